/* Uses nothing of SQLite (but is linked like the others), only libc. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <unistd.h>

static PyObject *answer(PyObject *self, PyObject *unused)
{
    return PyLong_FromLong(getpid() > 0 ? 42 : 0);
}

static PyMethodDef methods[] = {
    {"answer", answer, METH_NOARGS, "42."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_c", NULL, -1, methods};

PyMODINIT_FUNC PyInit__c(void) { return PyModule_Create(&module); }
