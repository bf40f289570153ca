// mtask-worker: the standard worker program; everything is in the library (lib/src/worker/worker_main.cpp).
#include "mtask/worker.hpp"

int main(int argc, char** argv) { return mtask::worker_main(argc, argv, mtask::task_handler{}); }
