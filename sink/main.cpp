// mtask-sink: the standard sink program; everything is in the library (lib/src/sink/sink_main.cpp).
#include "mtask/sink.hpp"

int main(int argc, char** argv) { return mtask::sink_main(argc, argv, {}); }
