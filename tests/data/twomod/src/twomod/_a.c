/* Sets state inside SQLite (its soft heap limit, a process-wide value of the library). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <sqlite3.h>

static PyObject *set_limit(PyObject *self, PyObject *arg)
{
    long long value = PyLong_AsLongLong(arg);
    if (value == -1 && PyErr_Occurred())
        return NULL;
    sqlite3_soft_heap_limit64(value);
    Py_RETURN_NONE;
}

static PyObject *version(PyObject *self, PyObject *unused)
{
    return PyUnicode_FromString(sqlite3_libversion());
}

static PyMethodDef methods[] = {
    {"set_limit", set_limit, METH_O, "Set SQLite's soft heap limit."},
    {"version", version, METH_NOARGS, "sqlite3_libversion()."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_a", NULL, -1, methods};

PyMODINIT_FUNC PyInit__a(void) { return PyModule_Create(&module); }
