"""Tests of the venue simulator (package simulator/)."""
