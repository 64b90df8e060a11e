/* An extension module without Python.h (used for cross builds and the libc stub):
 * it only needs an exported PyInit_ function and a couple of libc calls. */
#ifndef MODNAME
#error "compile with -DMODNAME=<module name>"
#endif
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)

int printf(const char *format, ...);
int puts(const char *s);
#ifdef USE_ARC4RANDOM
unsigned int arc4random(void); /* glibc 2.36 */
#endif

__attribute__((visibility("default"))) void *CAT(PyInit_, MODNAME)(void)
{
    static volatile int calls;
    printf("%d\n", ++calls);
    puts("geodemo");
#ifdef USE_ARC4RANDOM
    calls += (int)arc4random();
#endif
    return 0;
}
