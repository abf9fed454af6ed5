"""Tests of the venue simulator (package venue/)."""
