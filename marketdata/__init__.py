"""The market-data toolkit every venue's book sync builds on: the order book and the exact
decimal parser (C, `_book.c`), and a book's state as decimal strings (`book.book_view`).

Generic: no venue's rules here (those live in `venues/<venue>/md/`).
"""
