// mtask-ventilator: the standard ventilator program; everything is in the library
// (lib/src/ventilator/ventilator_main.cpp).
#include "mtask/ventilator.hpp"

int main(int argc, char** argv) { return mtask::ventilator_main(argc, argv); }
