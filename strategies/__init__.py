"""Example strategies built on the consumer SDK (`consumer`). Run one with
`python -m strategies.<name> --help`."""
