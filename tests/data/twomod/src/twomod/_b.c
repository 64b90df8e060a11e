/* Reads the state _a set: the same value only if both modules use one copy of SQLite. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <sqlite3.h>

static PyObject *get_limit(PyObject *self, PyObject *unused)
{
    return PyLong_FromLongLong(sqlite3_soft_heap_limit64(-1));
}

static PyObject *built_for(PyObject *self, PyObject *unused)
{
    return PyUnicode_FromString(TWOMOD_BUILT_FOR);
}

static PyMethodDef methods[] = {
    {"get_limit", get_limit, METH_NOARGS, "SQLite's soft heap limit."},
    {"built_for", built_for, METH_NOARGS, "TWOMOD_BUILT_FOR at build time (build-env)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_b", NULL, -1, methods};

PyMODINIT_FUNC PyInit__b(void) { return PyModule_Create(&module); }
