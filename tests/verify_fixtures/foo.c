/* libfoo.so.1: a dependency that is not in any manylinux whitelist. */
int foo_answer(void)
{
    return 42;
}
