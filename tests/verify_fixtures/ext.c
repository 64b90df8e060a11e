/* A tiny CPython extension module used by tests/test_verify.py.
 *
 * Compile with -DMODNAME=<name> (the PyInit_ suffix and the file name must match).
 * Optional switches:
 *   -DUSE_ARC4RANDOM  call arc4random() (GLIBC_2.36): too new for manylinux_2_17
 *   -DUSE_FOO         call foo_answer() from libfoo.so.1 (tests/verify_fixtures/foo.c)
 *   -DEXPORT_API      define functions named like SQLite's and GEOS's C API
 *                     (sqlite3_open_v2, GEOSversion), as a module carrying those
 *                     libraries exports them when built without -fvisibility=hidden
 *   -DUSE_BLACKLISTED call __cxa_thread_atexit_impl (GLIBC_2.18), which auditwheel's
 *                     policy blacklists for every manylinux policy
 * The geodemo_helper_* functions and geodemo_table are deliberately non-static: with
 * -fvisibility=hidden they stay private, without it they leak into .dynsym.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#ifdef USE_ARC4RANDOM
#include <stdlib.h>
#endif

#ifndef MODNAME
#error "compile with -DMODNAME=<module name>"
#endif
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define STR_(x) #x
#define STR(x) STR_(x)

#ifdef USE_FOO
int foo_answer(void);
#endif
#ifdef USE_BLACKLISTED
int __cxa_thread_atexit_impl(void (*func)(void *), void *obj, void *dso_symbol);
static void noop(void *p) { (void)p; }
#endif

#ifdef EXPORT_API
int sqlite3_open_v2(const char *name, void **db, int flags, const char *vfs)
{
    (void)name; (void)db; (void)flags; (void)vfs;
    return 0;
}

const char *GEOSversion(void) { return "3.13.1-CAPI-1.19.2"; }
#endif

double geodemo_table[4] = {1.0, 2.0, 3.0, 4.0};

int geodemo_helper_a(const char *s, char *buf, size_t size)
{
    size_t n = strlen(s);            /* GLIBC_2.2.5 */
    if (n >= size)
        n = size - 1;
    memcpy(buf, s, n);               /* GLIBC_2.14 on x86_64 */
    buf[n] = '\0';
    return (int)n;
}

long geodemo_helper_b(long x)
{
    long extra = 0;
#ifdef USE_ARC4RANDOM
    extra += (long)(arc4random() & 1u);
#endif
#ifdef USE_FOO
    extra += foo_answer();
#endif
#ifdef USE_BLACKLISTED
    extra += __cxa_thread_atexit_impl(noop, &extra, 0);
#endif
    return x + extra + (long)geodemo_table[(size_t)x & 3u];
}

static PyObject *demo_length(PyObject *self, PyObject *arg)
{
    char buf[64];
    const char *s = PyUnicode_AsUTF8(arg);
    (void)self;
    if (s == NULL)
        return NULL;
    return PyLong_FromLong(geodemo_helper_b(geodemo_helper_a(s, buf, sizeof buf)));
}

static PyMethodDef methods[] = {
    {"length", demo_length, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, STR(MODNAME), NULL, -1, methods};

PyMODINIT_FUNC CAT(PyInit_, MODNAME)(void)
{
    return PyModule_Create(&module);
}
