/* A stand-in libc.so.6 for link time only.
 *
 * Built without a version script it exports unversioned symbols, so whatever links
 * against it gets unversioned references to libc: the "unversioned-libc" mistake of a
 * sysroot or stub library without symbol versions.  Built with libc_stub.map it defines
 * GLIBC_2.17, like the real aarch64 glibc.  Never loaded at run time.
 */
int printf(const char *format, ...)
{
    (void)format;
    return 0;
}

int puts(const char *s)
{
    (void)s;
    return 0;
}

unsigned int arc4random(void)
{
    return 4;
}
