// mtask: a whole job on one machine in one command; everything is in the library
// (lib/src/launch/).
#include "launch/launch.hpp"

int main(int argc, char** argv) { return mtask::launch_main(argc, argv); }
