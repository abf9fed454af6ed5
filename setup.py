"""Build of the one compiled module, marketdata._book (the order book; see marketdata/book.py).

Everything else is declared in pyproject.toml; setuptools reads both.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("marketdata._book", ["marketdata/_book.c"],
                             extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter",
                                                 "-Wno-missing-field-initializers"])])
