// mtask-top: a live view of a running job; everything is in the library (lib/src/top/).
#include "top/top_main.hpp"

int main(int argc, char** argv) { return mtask::top_main(argc, argv); }
