/* An extension module without Python.h (used for cross builds and the libc stub):
 * it only needs an exported PyInit_ function and a couple of libc calls. */
#ifndef MODNAME
#error "compile with -DMODNAME=<module name>"
#endif
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)

int printf(const char *format, ...);
int puts(const char *s);

__attribute__((visibility("default"))) void *CAT(PyInit_, MODNAME)(void)
{
    static volatile int calls;
    printf("%d\n", ++calls);
    puts("geodemo");
    return 0;
}
