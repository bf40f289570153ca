// The unit-test executable's entry point; the cases live in one <module>_test.cpp each.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
