#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <sqlite3.h>

/* query(sql) -> first column of the first row, as text, from an in-memory database */
static PyObject *query(PyObject *self, PyObject *args) {
    const char *sql;
    sqlite3 *db = NULL;
    sqlite3_stmt *stmt = NULL;
    PyObject *result = NULL;
    if (!PyArg_ParseTuple(args, "s", &sql)) return NULL;
    if (sqlite3_open(":memory:", &db) != SQLITE_OK ||
        sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK) {
        PyErr_SetString(PyExc_RuntimeError, sqlite3_errmsg(db));
    } else if (sqlite3_step(stmt) == SQLITE_ROW) {
        result = PyUnicode_FromString((const char *)sqlite3_column_text(stmt, 0));
    } else {
        result = Py_None;
        Py_INCREF(result);
    }
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return result;
}

static PyObject *version(PyObject *self, PyObject *noargs) {
    return PyUnicode_FromString(sqlite3_libversion());
}

static PyMethodDef methods[] = {
    {"query", query, METH_VARARGS, "Run a query on an in-memory database."},
    {"version", version, METH_NOARGS, "The linked SQLite version."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_mesonext", NULL, -1, methods};

PyMODINIT_FUNC PyInit__mesonext(void) { return PyModule_Create(&module); }
