// mtask-keygen PATH: writes PATH.key (public certificate, to hand to the peers that must accept
// or pin this process) and PATH.key_secret (mode 0600, stays on this host). Never prints a key.
#include "security/keygen.hpp"

#include "common/cli.hpp"
#include "mtask/error.hpp"
#include "mtask/exit_code.hpp"
#include "security/certificate.hpp"
#include "transport/curve.hpp"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <cstdio>

namespace mtask {

int keygen_main(int argc, char** argv) {
  const auto program = program_name(argc > 0 ? argv[0] : nullptr, "mtask-keygen");
  CLI::App app(
      "Makes a CURVE key pair for mtask: PATH.key is the public certificate (give it to the\n"
      "ventilator's and sink's --allow folders, or as --ventilator-key / --sink-key to those that\n"
      "connect to this process); PATH.key_secret is the secret one (mode 0600), for --key on this\n"
      "host only. Both are in ZeroMQ's certificate format (as czmq's zcert_save writes it).",
      program);
  app.set_version_flag("--version", std::string(MTASK_VERSION));
  std::string path;
  std::string name;
  app.add_option("PATH", path, "Where to write: PATH.key and PATH.key_secret (existing files are never replaced)")
      ->required();
  app.add_option("--name", name, "The name logs give this key's holder (default: PATH's base name)");
  const int rc = parse_args(app, argc, argv, [&] {
    if (name.empty()) name = path.substr(path.rfind('/') + 1);
    if (name.empty()) throw usage_error(fmt::format("PATH '{}' has no base name to name the key by", path));
    if (name.find_first_of("\"\n\r") != std::string::npos)
      throw usage_error("--name may not contain quotes or line breaks");
  });
  if (rc >= 0) return rc;
  try {
    const auto keys = new_curve_keypair();
    save_certificate_pair(path,
                          certificate{.name = name, .public_key = keys.public_key, .secret_key = keys.secret_key});
  } catch (const error& e) {
    std::fputs(fmt::format("{}: error: {}\n", program, e.what()).c_str(), stderr);
    return exit_failure;
  }
  std::fputs(fmt::format("{}: wrote {}.key (public, name '{}') and {}.key_secret (secret, keep it on this host)\n",
                         program, path, name, path)
                 .c_str(),
             stderr);
  return exit_ok;
}

} // namespace mtask
