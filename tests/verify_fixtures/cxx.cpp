// A C++ extension that needs GLIBCXX_3.4.29 (std::to_chars(double), new in GCC 11's
// libstdc++), more than manylinux_2_28 allows (GLIBCXX_3.4.24).
// The std::vector instantiation is exported as a weak symbol even with
// -fvisibility=hidden (libstdc++ marks namespace std default-visibility); geonox
// tolerates those, so this module must only break the C++ runtime rule.
#include <Python.h>
#include <charconv>
#include <vector>

static PyObject *format_double(PyObject *, PyObject *arg)
{
    static std::vector<char> scratch;
    char buf[64];
    scratch.push_back('x');
    double value = PyFloat_AsDouble(arg);
    if (value == -1.0 && PyErr_Occurred())
        return nullptr;
    auto result = std::to_chars(buf, buf + sizeof buf, value);
    return PyUnicode_FromStringAndSize(buf, result.ptr - buf);
}

static PyMethodDef methods[] = {
    {"format", format_double, METH_O, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_cxx", nullptr, -1, methods};

PyMODINIT_FUNC PyInit__cxx(void)
{
    return PyModule_Create(&module);
}
