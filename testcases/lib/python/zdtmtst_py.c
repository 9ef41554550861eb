/*
 * The protocol library (testcases/lib) as a shared object for Python test
 * programs (testcases/lib/zdtmtst.py loads it with ctypes): pass() and fail()
 * are macros, so they get functions here.
 */
#include "zdtmtst.h"

void zdtm_py_pass(void)
{
	pass();
}

void zdtm_py_fail(const char *what)
{
	fail("%s", what);
}
