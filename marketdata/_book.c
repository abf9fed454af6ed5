/* marketdata._book: the order book of one instrument and its decimal parser, in C
 * (see ingest/book.py and ingest/decimals.py).
 *
 * Why C: per level, a depth update is a decimal parse, a search and a store; in
 * CPython that loop was the floor of ingest (~0.6 us a level, callgrind), here it
 * is ~30-60 ns. Everything around it (JSON through orjson, sequence rules,
 * checksums, resync policy) stays in Python.
 *
 * Layout: per side, parallel arrays sorted by key ascending with the BEST level at
 * the END (bids: key = price; asks: key = -price), so the top N is read backwards
 * from the end and most inserts and deletes (near the top, measured on the 24 h
 * ETHUSDT recording) move few bytes. A text book (keep_text: OKX and Kraken
 * checksums need the venue's strings as received) also holds a reference to each
 * level's price and size string.
 *
 * Decimal strings are parsed exactly to int64 mantissas at the instrument's scale,
 * with the semantics of events.to_mantissa restricted to what venues send
 * (unsigned ASCII digits with at most one '.'; digits past the scale must be
 * zeros; the mantissa must fit int64); anything else raises events.DecimalError,
 * possibly after earlier levels of the same call were applied (the owner then
 * drops and resyncs the book, as it does for any bad input).
 *
 * One owner thread (the ingest loop); the GIL is held throughout.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>

static PyObject *DecimalError;   /* events.errors.DecimalError */

/* -- decimals ------------------------------------------------------------------- */

static const int64_t POW10[19] = {
    1LL, 10LL, 100LL, 1000LL, 10000LL, 100000LL, 1000000LL, 10000000LL, 100000000LL,
    1000000000LL, 10000000000LL, 100000000000LL, 1000000000000LL, 10000000000000LL,
    100000000000000LL, 1000000000000000LL, 10000000000000000LL, 100000000000000000LL,
    1000000000000000000LL};

/* The mantissa of unsigned decimal string `s` at `scale` into *out; -1 with
 * DecimalError set if there is none. */
static int
parse_decimal(PyObject *s, int scale, int64_t *out)
{
    if (!PyUnicode_Check(s)) {
        PyErr_Format(DecimalError, "decimal must be a string: %R", s);
        return -1;
    }
    if (!PyUnicode_IS_ASCII(s))
        goto bad;
    const char *p = (const char *)PyUnicode_DATA(s);
    Py_ssize_t len = PyUnicode_GET_LENGTH(s);
    uint64_t m = 0;
    int seen_dot = 0, frac = 0, digits = 0;
    for (Py_ssize_t i = 0; i < len; i++) {
        char c = p[i];
        if (c >= '0' && c <= '9') {
            digits++;
            if (seen_dot) {
                if (frac == scale) {           /* past the scale: zeros only */
                    if (c != '0') {
                        PyErr_Format(DecimalError, "more precision than scale %d: %R", scale, s);
                        return -1;
                    }
                    continue;
                }
                frac++;
            }
            uint64_t d = (uint64_t)(c - '0');
            if (m > ((uint64_t)INT64_MAX - d) / 10)
                goto big;
            m = m * 10 + d;
        }
        else if (c == '.' && !seen_dot)
            seen_dot = 1;
        else
            goto bad;
    }
    if (!digits)
        goto bad;
    int64_t f = POW10[scale - frac];
    if (m > (uint64_t)(INT64_MAX / f))
        goto big;
    *out = (int64_t)m * f;
    return 0;
big:
    PyErr_Format(DecimalError, "too large for int64 at scale %d: %R", scale, s);
    return -1;
bad:
    PyErr_Format(DecimalError, "not an unsigned decimal string: %R", s);
    return -1;
}

static int
check_scale(int scale)
{
    if (scale < 0 || scale > 18) {
        PyErr_Format(DecimalError, "scale must be in 0..18: scale=%d", scale);
        return -1;
    }
    return 0;
}

/* -- one side ------------------------------------------------------------------- */

typedef struct {
    int64_t *key;        /* ascending; best last */
    int64_t *sz;
    PyObject **pt;       /* keep_text: the price strings (owned references) */
    PyObject **st;       /* keep_text: the size strings */
    Py_ssize_t n, cap;
} Side;

static void
side_clear(Side *s)
{
    if (s->pt) {
        for (Py_ssize_t i = 0; i < s->n; i++) {
            Py_DECREF(s->pt[i]);
            Py_DECREF(s->st[i]);
        }
    }
    s->n = 0;
}

static void
side_free(Side *s)
{
    side_clear(s);
    PyMem_Free(s->key);
    PyMem_Free(s->sz);
    PyMem_Free(s->pt);
    PyMem_Free(s->st);
    memset(s, 0, sizeof(*s));
}

static int
side_reserve(Side *s, Py_ssize_t want, int text)
{
    if (want <= s->cap)
        return 0;
    Py_ssize_t cap = s->cap ? s->cap : 64;
    while (cap < want)
        cap *= 2;
    int64_t *key = PyMem_Realloc(s->key, cap * sizeof(int64_t));
    if (!key)
        goto oom;
    s->key = key;
    int64_t *sz = PyMem_Realloc(s->sz, cap * sizeof(int64_t));
    if (!sz)
        goto oom;
    s->sz = sz;
    if (text) {
        PyObject **pt = PyMem_Realloc(s->pt, cap * sizeof(PyObject *));
        if (!pt)
            goto oom;
        s->pt = pt;
        PyObject **st = PyMem_Realloc(s->st, cap * sizeof(PyObject *));
        if (!st)
            goto oom;
        s->st = st;
    }
    s->cap = cap;
    return 0;
oom:
    PyErr_NoMemory();
    return -1;
}

/* First index with key[i] >= k (n if none). Updates cluster near the end (the
 * top of book): probe there first, then bisect. */
static inline Py_ssize_t
side_search(const Side *s, int64_t k)
{
    Py_ssize_t lo = 0, hi = s->n;
    if (hi > 16 && s->key[hi - 16] < k)
        lo = hi - 15;
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) >> 1;
        if (s->key[mid] < k)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The price and size strings of one level: [price, size, ...] (a list or tuple of
 * at least two items; venues add fields after them). Borrowed references. */
static int
level_items(PyObject *level, PyObject **p, PyObject **q)
{
    if (PyList_CheckExact(level) && PyList_GET_SIZE(level) >= 2) {
        *p = PyList_GET_ITEM(level, 0);
        *q = PyList_GET_ITEM(level, 1);
        return 0;
    }
    if (PyTuple_CheckExact(level) && PyTuple_GET_SIZE(level) >= 2) {
        *p = PyTuple_GET_ITEM(level, 0);
        *q = PyTuple_GET_ITEM(level, 1);
        return 0;
    }
    PyErr_Format(PyExc_TypeError, "a level must be a [price, size, ...] list: %R", level);
    return -1;
}

/* -- the book ------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    Side bid, ask;
    int px_scale, sz_scale;
    char keep_text;      /* a char: the T_BOOL member reads one byte */
    long long last_update_id;
} Book;

/* Apply [price, size, ...] updates to one side; a size of zero removes the level. */
static int
book_apply(Book *b, Side *s, PyObject *levels, int neg)
{
    PyObject *seq = PySequence_Fast(levels, "levels must be a list of [price, size] levels");
    if (!seq)
        return -1;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    int text = b->keep_text;
    for (Py_ssize_t j = 0; j < count; j++) {
        PyObject *p, *q;
        int64_t m, v;
        if (level_items(items[j], &p, &q) < 0 || parse_decimal(p, b->px_scale, &m) < 0 ||
            parse_decimal(q, b->sz_scale, &v) < 0)
            goto fail;
        int64_t k = neg ? -m : m;
        Py_ssize_t i = side_search(s, k);
        if (i < s->n && s->key[i] == k) {
            if (v) {
                s->sz[i] = v;
                if (text) {
                    Py_INCREF(p);
                    Py_SETREF(s->pt[i], p);
                    Py_INCREF(q);
                    Py_SETREF(s->st[i], q);
                }
            }
            else {
                Py_ssize_t tail = s->n - i - 1;
                if (text) {
                    Py_DECREF(s->pt[i]);
                    Py_DECREF(s->st[i]);
                    memmove(s->pt + i, s->pt + i + 1, tail * sizeof(PyObject *));
                    memmove(s->st + i, s->st + i + 1, tail * sizeof(PyObject *));
                }
                memmove(s->key + i, s->key + i + 1, tail * sizeof(int64_t));
                memmove(s->sz + i, s->sz + i + 1, tail * sizeof(int64_t));
                s->n--;
            }
        }
        else if (v) {
            if (side_reserve(s, s->n + 1, text) < 0)
                goto fail;
            Py_ssize_t tail = s->n - i;
            memmove(s->key + i + 1, s->key + i, tail * sizeof(int64_t));
            memmove(s->sz + i + 1, s->sz + i, tail * sizeof(int64_t));
            s->key[i] = k;
            s->sz[i] = v;
            if (text) {
                memmove(s->pt + i + 1, s->pt + i, tail * sizeof(PyObject *));
                memmove(s->st + i + 1, s->st + i, tail * sizeof(PyObject *));
                Py_INCREF(p);
                s->pt[i] = p;
                Py_INCREF(q);
                s->st[i] = q;
            }
            s->n++;
        }
    }
    Py_DECREF(seq);
    return 0;
fail:
    Py_DECREF(seq);
    return -1;
}

typedef struct {
    int64_t key, sz;
    Py_ssize_t order;
    PyObject *p, *q;     /* borrowed */
} Row;

static int
row_cmp(const void *a, const void *b)
{
    const Row *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->order < y->order ? -1 : (x->order > y->order);
}

/* Replace one side with snapshot levels: zero sizes skipped, a repeated price
 * keeps its last size. */
static int
book_load_side(Book *b, Side *s, PyObject *levels, int neg)
{
    PyObject *seq = PySequence_Fast(levels, "levels must be a list of [price, size] levels");
    if (!seq)
        return -1;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    Row *rows = PyMem_Malloc((count ? count : 1) * sizeof(Row));
    if (!rows) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t n = 0;
    int sorted = 1;
    for (Py_ssize_t j = 0; j < count; j++) {
        Row *r = rows + n;
        int64_t m;
        if (level_items(items[j], &r->p, &r->q) < 0 || parse_decimal(r->p, b->px_scale, &m) < 0 ||
            parse_decimal(r->q, b->sz_scale, &r->sz) < 0)
            goto fail;
        if (!r->sz)
            continue;
        r->key = neg ? -m : m;
        r->order = j;
        if (n && rows[n - 1].key >= r->key)
            sorted = 0;
        n++;
    }
    if (!sorted)
        qsort(rows, n, sizeof(Row), row_cmp);
    if (side_reserve(s, n, b->keep_text) < 0)
        goto fail;
    side_clear(s);
    Py_ssize_t out = 0;
    for (Py_ssize_t j = 0; j < n; j++) {
        if (j + 1 < n && rows[j + 1].key == rows[j].key)
            continue;                       /* a later row repeats this price */
        s->key[out] = rows[j].key;
        s->sz[out] = rows[j].sz;
        if (b->keep_text) {
            Py_INCREF(rows[j].p);
            s->pt[out] = rows[j].p;
            Py_INCREF(rows[j].q);
            s->st[out] = rows[j].q;
        }
        out++;
    }
    s->n = out;
    PyMem_Free(rows);
    Py_DECREF(seq);
    return 0;
fail:
    PyMem_Free(rows);
    Py_DECREF(seq);
    return -1;
}

static int
Book_init(Book *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"px_scale", "sz_scale", "keep_text", NULL};
    int px, sz, keep = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "ii|p:Book", kwlist, &px, &sz, &keep))
        return -1;
    if (check_scale(px) < 0 || check_scale(sz) < 0)
        return -1;
    if (self->keep_text != keep) {         /* __init__ called again: start over */
        side_free(&self->bid);
        side_free(&self->ask);
    }
    side_clear(&self->bid);
    side_clear(&self->ask);
    self->px_scale = px;
    self->sz_scale = sz;
    self->keep_text = (char)keep;
    self->last_update_id = 0;
    return 0;
}

static void
Book_dealloc(Book *self)
{
    side_free(&self->bid);
    side_free(&self->ask);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Book_clear(Book *self, PyObject *Py_UNUSED(ignored))
{
    side_clear(&self->bid);
    side_clear(&self->ask);
    self->last_update_id = 0;
    Py_RETURN_NONE;
}

static PyObject *
Book_load(Book *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"bids", "asks", "last_update_id", NULL};
    PyObject *bids, *asks;
    long long last = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|L:load", kwlist, &bids, &asks, &last))
        return NULL;
    self->last_update_id = 0;
    if (book_load_side(self, &self->bid, bids, 0) < 0 || book_load_side(self, &self->ask, asks, 1) < 0) {
        side_clear(&self->bid);
        side_clear(&self->ask);
        return NULL;
    }
    self->last_update_id = last;
    Py_RETURN_NONE;
}

static PyObject *
Book_apply_bids(Book *self, PyObject *levels)
{
    if (book_apply(self, &self->bid, levels, 0) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
Book_apply_asks(Book *self, PyObject *levels)
{
    if (book_apply(self, &self->ask, levels, 1) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
Book_crossed(Book *self, PyObject *Py_UNUSED(ignored))
{
    const Side *b = &self->bid, *a = &self->ask;
    return PyBool_FromLong(b->n && a->n && b->key[b->n - 1] >= -a->key[a->n - 1]);
}

static PyObject *
Book_best(Book *self, PyObject *Py_UNUSED(ignored))
{
    const Side *b = &self->bid, *a = &self->ask;
    return Py_BuildValue("(LLLL)", b->n ? (long long)b->key[b->n - 1] : 0LL,
                         b->n ? (long long)b->sz[b->n - 1] : 0LL,
                         a->n ? (long long)-a->key[a->n - 1] : 0LL,
                         a->n ? (long long)a->sz[a->n - 1] : 0LL);
}

/* The best `n` values of one side's column, best first, as a list of ints. */
static PyObject *
column(const Side *s, const int64_t *col, Py_ssize_t n, int negate)
{
    Py_ssize_t k = n < s->n ? n : s->n;
    PyObject *out = PyList_New(k);
    if (!out)
        return NULL;
    for (Py_ssize_t j = 0; j < k; j++) {
        int64_t v = col[s->n - 1 - j];
        PyObject *o = PyLong_FromLongLong(negate ? -v : v);
        if (!o) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, j, o);
    }
    return out;
}

static PyObject *
text_column(const Side *s, PyObject *const *col, Py_ssize_t n)
{
    Py_ssize_t k = n < s->n ? n : s->n;
    PyObject *out = PyList_New(k);
    if (!out)
        return NULL;
    for (Py_ssize_t j = 0; j < k; j++) {
        PyObject *o = col[s->n - 1 - j];
        Py_INCREF(o);
        PyList_SET_ITEM(out, j, o);
    }
    return out;
}

static PyObject *
four(PyObject *a, PyObject *b, PyObject *c, PyObject *d)
{
    if (!a || !b || !c || !d) {
        Py_XDECREF(a);
        Py_XDECREF(b);
        Py_XDECREF(c);
        Py_XDECREF(d);
        return NULL;
    }
    PyObject *t = PyTuple_Pack(4, a, b, c, d);
    Py_DECREF(a);
    Py_DECREF(b);
    Py_DECREF(c);
    Py_DECREF(d);
    return t;
}

static PyObject *
Book_top(Book *self, PyObject *arg)
{
    Py_ssize_t n = PyLong_AsSsize_t(arg);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    if (n < 0)
        n = 0;
    const Side *b = &self->bid, *a = &self->ask;
    return four(column(b, b->key, n, 0), column(b, b->sz, n, 0), column(a, a->key, n, 1),
                column(a, a->sz, n, 0));
}

static PyObject *
Book_top_text(Book *self, PyObject *arg)
{
    if (!self->keep_text) {
        PyErr_SetString(PyExc_ValueError, "top_text: this book keeps no strings (keep_text=False)");
        return NULL;
    }
    Py_ssize_t n = PyLong_AsSsize_t(arg);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    if (n < 0)
        n = 0;
    const Side *b = &self->bid, *a = &self->ask;
    return four(text_column(b, b->pt, n), text_column(b, b->st, n), text_column(a, a->pt, n),
                text_column(a, a->st, n));
}

static void
write_column(int64_t *dst, const Side *s, const int64_t *col, Py_ssize_t k, Py_ssize_t width, int negate)
{
    for (Py_ssize_t j = 0; j < k; j++) {
        int64_t v = col[s->n - 1 - j];
        dst[j] = negate ? -v : v;
    }
    memset(dst + k, 0, (width - k) * sizeof(int64_t));
}

/* write_top(buffer, offset, n, width) -> (nb, na): the best n levels per side into
 * four int64 columns of `width` (bid px, bid sz, ask px, ask sz), zero-padded. */
static PyObject *
Book_write_top(Book *self, PyObject *args)
{
    Py_buffer view;
    Py_ssize_t offset, n, width;
    if (!PyArg_ParseTuple(args, "w*nnn:write_top", &view, &offset, &n, &width))
        return NULL;
    if (width < 0 || n < 0 || n > width || offset < 0 ||
        offset > view.len - 4 * width * (Py_ssize_t)sizeof(int64_t)) {
        PyBuffer_Release(&view);
        PyErr_Format(PyExc_ValueError, "write_top: %zd columns of %zd at offset %zd do not fit %zd bytes",
                     (Py_ssize_t)4, width, offset, view.len);
        return NULL;
    }
    const Side *b = &self->bid, *a = &self->ask;
    Py_ssize_t nb = n < b->n ? n : b->n, na = n < a->n ? n : a->n;
    int64_t cols[4 * 64];
    int64_t *tmp = width <= 64 ? cols : PyMem_Malloc(4 * width * sizeof(int64_t));
    if (!tmp) {
        PyBuffer_Release(&view);
        return PyErr_NoMemory();
    }
    write_column(tmp, b, b->key, nb, width, 0);
    write_column(tmp + width, b, b->sz, nb, width, 0);
    write_column(tmp + 2 * width, a, a->key, na, width, 1);
    write_column(tmp + 3 * width, a, a->sz, na, width, 0);
    memcpy((char *)view.buf + offset, tmp, 4 * width * sizeof(int64_t));  /* unaligned-safe */
    if (tmp != cols)
        PyMem_Free(tmp);
    PyBuffer_Release(&view);
    return Py_BuildValue("(nn)", nb, na);
}

static PyObject *
Book_depth(Book *self, PyObject *Py_UNUSED(ignored))
{
    return Py_BuildValue("(nn)", self->bid.n, self->ask.n);
}

static void
side_truncate(Side *s, Py_ssize_t keep)
{
    Py_ssize_t extra = s->n - keep;
    if (extra <= 0)
        return;
    if (s->pt) {
        for (Py_ssize_t i = 0; i < extra; i++) {
            Py_DECREF(s->pt[i]);
            Py_DECREF(s->st[i]);
        }
        memmove(s->pt, s->pt + extra, keep * sizeof(PyObject *));
        memmove(s->st, s->st + extra, keep * sizeof(PyObject *));
    }
    memmove(s->key, s->key + extra, keep * sizeof(int64_t));
    memmove(s->sz, s->sz + extra, keep * sizeof(int64_t));
    s->n = keep;
}

static PyObject *
Book_truncate(Book *self, PyObject *arg)
{
    Py_ssize_t n = PyLong_AsSsize_t(arg);
    if (n == -1 && PyErr_Occurred())
        return NULL;
    if (n < 0)
        n = 0;
    side_truncate(&self->bid, n);
    side_truncate(&self->ask, n);
    Py_RETURN_NONE;
}

static PyObject *
Book_repr(Book *self)
{
    return PyUnicode_FromFormat("Book(px_scale=%d, sz_scale=%d, keep_text=%s, bids=%zd, asks=%zd, "
                                "last_update_id=%lld)", self->px_scale, self->sz_scale,
                                self->keep_text ? "True" : "False", self->bid.n, self->ask.n,
                                self->last_update_id);
}

static PyMethodDef Book_methods[] = {
    {"clear", (PyCFunction)Book_clear, METH_NOARGS, "Empty both sides; last_update_id = 0."},
    {"load", (PyCFunction)(void (*)(void))Book_load, METH_VARARGS | METH_KEYWORDS,
     "load(bids, asks, last_update_id=0): replace the book with snapshot levels\n"
     "([price, size, ...] strings; zero sizes skipped, a repeated price keeps its last size)."},
    {"apply_bids", (PyCFunction)Book_apply_bids, METH_O,
     "Apply [price, size, ...] updates to the bids; a size of zero removes the level."},
    {"apply_asks", (PyCFunction)Book_apply_asks, METH_O,
     "Apply [price, size, ...] updates to the asks; a size of zero removes the level."},
    {"crossed", (PyCFunction)Book_crossed, METH_NOARGS,
     "True when the best bid is at or above the best ask (a broken book)."},
    {"best", (PyCFunction)Book_best, METH_NOARGS,
     "(bid_px, bid_sz, ask_px, ask_sz) of the top of book; 0 for an empty side."},
    {"top", (PyCFunction)Book_top, METH_O,
     "top(n) -> (bid_px, bid_sz, ask_px, ask_sz): the best n levels per side, best first."},
    {"top_text", (PyCFunction)Book_top_text, METH_O,
     "top_text(n): the venue's strings of the best n levels per side, best first (keep_text)."},
    {"write_top", (PyCFunction)Book_write_top, METH_VARARGS,
     "write_top(buffer, offset, n, width) -> (nb, na): the best n levels per side as four\n"
     "little-endian int64 columns of `width` (bid px, bid sz, ask px, ask sz), zero-padded."},
    {"depth", (PyCFunction)Book_depth, METH_NOARGS, "(number of bid levels, number of ask levels)."},
    {"truncate", (PyCFunction)Book_truncate, METH_O, "truncate(n): keep the best n levels per side."},
    {NULL, NULL, 0, NULL}};

static PyMemberDef Book_members[] = {
    {"last_update_id", T_LONGLONG, offsetof(Book, last_update_id), 0,
     "The venue's update id (or sequence) of the last applied message."},
    {"px_scale", T_INT, offsetof(Book, px_scale), READONLY, "Decimals of the price mantissas."},
    {"sz_scale", T_INT, offsetof(Book, sz_scale), READONLY, "Decimals of the size mantissas."},
    {"keep_text", T_BOOL, offsetof(Book, keep_text), READONLY, "Whether the venue's strings are kept."},
    {NULL, 0, 0, 0, NULL}};

static PyTypeObject BookType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "marketdata._book.Book",
    .tp_basicsize = sizeof(Book),
    .tp_dealloc = (destructor)Book_dealloc,
    .tp_repr = (reprfunc)Book_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Book(px_scale, sz_scale, keep_text=False): full depth of one instrument as\n"
              "int64 mantissas (see marketdata.book).",
    .tp_methods = Book_methods,
    .tp_members = Book_members,
    .tp_init = (initproc)Book_init,
    .tp_new = PyType_GenericNew,
};

/* -- decimals of one scale ------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    int scale;
} Decimals;

static int
Decimals_init(Decimals *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"scale", NULL};
    int scale;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "i:Decimals", kwlist, &scale) || check_scale(scale) < 0)
        return -1;
    self->scale = scale;
    return 0;
}

static PyObject *
Decimals_call(Decimals *self, PyObject *args, PyObject *kwds)
{
    int64_t m;
    if (kwds || PyTuple_GET_SIZE(args) != 1) {
        PyErr_SetString(PyExc_TypeError, "Decimals(scale)(text) takes one string");
        return NULL;
    }
    if (parse_decimal(PyTuple_GET_ITEM(args, 0), self->scale, &m) < 0)
        return NULL;
    return PyLong_FromLongLong(m);
}

/* many(texts) -> bytearray of native int64 mantissas, one per string, in order. */
static PyObject *
Decimals_many(Decimals *self, PyObject *texts)
{
    PyObject *seq = PySequence_Fast(texts, "many() takes a sequence of decimal strings");
    if (!seq)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    PyObject *out = PyByteArray_FromStringAndSize(NULL, n * (Py_ssize_t)sizeof(int64_t));
    if (!out) {
        Py_DECREF(seq);
        return NULL;
    }
    int64_t *dst = (int64_t *)PyByteArray_AS_STRING(out);
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t m;
        if (parse_decimal(items[i], self->scale, &m) < 0) {
            Py_DECREF(out);
            Py_DECREF(seq);
            return NULL;
        }
        memcpy(dst + i, &m, sizeof m);
    }
    Py_DECREF(seq);
    return out;
}

static PyObject *
Decimals_repr(Decimals *self)
{
    return PyUnicode_FromFormat("Decimals(%d)", self->scale);
}

static PyMethodDef Decimals_methods[] = {
    {"many", (PyCFunction)Decimals_many, METH_O,
     "many(texts) -> bytearray: the mantissas of a sequence of strings as native int64, in\n"
     "order (view with numpy.frombuffer(b, numpy.int64)); DecimalError for a bad one."},
    {NULL, NULL, 0, NULL}};

static PyMemberDef Decimals_members[] = {
    {"scale", T_INT, offsetof(Decimals, scale), READONLY, "Decimals of the mantissas."},
    {NULL, 0, 0, 0, NULL}};

static PyTypeObject DecimalsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "marketdata._book.Decimals",
    .tp_basicsize = sizeof(Decimals),
    .tp_repr = (reprfunc)Decimals_repr,
    .tp_call = (ternaryfunc)Decimals_call,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Decimals(scale): venue decimal strings -> exact int64 mantissas at `scale`;\n"
              "call it with one string, or many() with a column of them (see ingest.decimals).",
    .tp_methods = Decimals_methods,
    .tp_members = Decimals_members,
    .tp_init = (initproc)Decimals_init,
    .tp_new = PyType_GenericNew,
};

/* -- module --------------------------------------------------------------------- */

static PyObject *
mod_parse(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *text;
    int scale;
    int64_t m;
    if (!PyArg_ParseTuple(args, "Oi:parse", &text, &scale))
        return NULL;
    if (check_scale(scale) < 0 || parse_decimal(text, scale, &m) < 0)
        return NULL;
    return PyLong_FromLongLong(m);
}

static PyMethodDef module_methods[] = {
    {"parse", mod_parse, METH_VARARGS,
     "parse(text, scale) -> int: the exact int64 mantissa of an unsigned decimal string\n"
     "(the book's own parser); DecimalError if there is none."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "marketdata._book", "The order book of one instrument and its decimal parser, in C (see marketdata.book).",
    -1, module_methods};

PyMODINIT_FUNC
PyInit__book(void)
{
    PyObject *errors = PyImport_ImportModule("events.errors");
    if (!errors)
        return NULL;
    DecimalError = PyObject_GetAttrString(errors, "DecimalError");
    Py_DECREF(errors);
    if (!DecimalError)
        return NULL;
    if (PyType_Ready(&BookType) < 0 || PyType_Ready(&DecimalsType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    if (PyModule_AddObjectRef(m, "Book", (PyObject *)&BookType) < 0 ||
        PyModule_AddObjectRef(m, "Decimals", (PyObject *)&DecimalsType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
