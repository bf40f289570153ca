// mtask-keygen: makes a CURVE key pair; everything is in the library (lib/src/security/keygen_main.cpp).
#include "security/keygen.hpp"

int main(int argc, char** argv) { return mtask::keygen_main(argc, argv); }
