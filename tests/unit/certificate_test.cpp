// Unit tests for CURVE certificate files (lib/src/security/certificate.cpp) and the key checks of
// lib/src/security/security.cpp: czmq's format read and written, file modes, every refusal.
#include "security/certificate.hpp"
#include "common/log.hpp"
#include "mtask/error.hpp"
#include "security/security.hpp"
#include "transport/curve.hpp"

#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace mtask;

namespace {

// RFC 26's test keys (the client's), as libzmq's tests use them.
constexpr const char* test_public = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID";
constexpr const char* test_secret = "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs";

// A secret certificate exactly as czmq's zcert_save_secret writes one.
const std::string czmq_secret = std::string(
                                    "#   ****  Generated on 2017-01-01 12:00:00 by CZMQ  ****\n"
                                    "#   ZeroMQ CURVE **Secret** Certificate\n"
                                    "#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n"
                                    "\n"
                                    "metadata\n"
                                    "    name = \"alice\"\n"
                                    "curve\n"
                                    "    public-key = \"") +
                                test_public + "\"\n    secret-key = \"" + test_secret + "\"\n";

struct scratch_dir {
  fs::path path;
  scratch_dir() {
    std::string templ = (fs::temp_directory_path() / "mtask-cert-XXXXXX").string();
    path = ::mkdtemp(templ.data());
  }
  ~scratch_dir() { fs::remove_all(path); }
  [[nodiscard]] std::string operator/(const std::string& name) const { return (path / name).string(); }
};

void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

unsigned mode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

struct captured_log {
  std::vector<std::string> lines;
  captured_log() {
    log::set_level(log::level::warn);
    log::set_sink([this](std::string_view l) { lines.emplace_back(l); });
  }
  ~captured_log() { log::set_sink(nullptr); }
};

common_options plaintext() { return common_options{}; }

// A Secret volume as the kubelet writes one (its AtomicWriter): the files in a timestamped folder,
// `..data` a symlink to it, and each key a symlink through `..data`, mode 0644 unless the
// manifest sets defaultMode. Each entry of `files` is written with `mode`.
void make_secret_volume(const fs::path& dir, const std::vector<std::pair<std::string, std::string>>& files,
                        unsigned mode) {
  const std::string stamp = "..2026_12_07_09_00_00.123456789";
  fs::create_directories(dir / stamp);
  for (const auto& [name, text] : files) {
    write((dir / stamp / name).string(), text);
    REQUIRE(::chmod((dir / stamp / name).c_str(), mode) == 0);
  }
  fs::create_directory_symlink(stamp, dir / "..data");
  for (const auto& [name, text] : files) fs::create_symlink(fs::path("..data") / name, dir / name);
}

std::string secret_text(const std::string& name, const curve_keys& k) {
  return format_certificate(certificate{.name = name, .public_key = k.public_key, .secret_key = k.secret_key});
}

std::string public_text(const std::string& name, const curve_keys& k) {
  return format_certificate(certificate{.name = name, .public_key = k.public_key, .secret_key = {}});
}

} // namespace

TEST_CASE("certificate reads the secret certificate czmq writes") {
  const auto c = parse_certificate(czmq_secret, "alice_secret", true);
  CHECK(c.name == "alice");
  CHECK(c.public_key == test_public);
  CHECK(c.secret_key == test_secret);
}

TEST_CASE("certificate keys are libzmq's: the public key derives from the secret one") {
  CHECK(curve_public_of(test_secret) == test_public);
  CHECK(curve_public_of("not a key") == "");
  const auto pair = new_curve_keypair();
  CHECK(is_z85_key(pair.public_key));
  CHECK(curve_public_of(pair.secret_key) == pair.public_key);
}

TEST_CASE("certificate reads unquoted values, comments and CRLF line ends") {
  const std::string text = std::string("# a comment\r\nmetadata\r\n    name = bob   # trailing\r\ncurve\r\n") +
                           "    public-key = '" + test_public + "'\r\n";
  const auto c = parse_certificate(text, "bob.key", false);
  CHECK(c.name == "bob");
  CHECK(c.public_key == test_public);
  CHECK(c.secret_key.empty());
}

TEST_CASE("certificate refuses a file that is not one, naming it") {
  CHECK_THROWS_WITH_AS(parse_certificate("hello\n", "x.key", false),
                       "'x.key': not a ZeroMQ certificate (no 'curve' section)", error);
  CHECK_THROWS_WITH_AS(parse_certificate("curve\n    public-key = \"short\"\n", "x.key", false),
                       "'x.key': public-key is not a CURVE key (40 characters of Z85)", error);
  const std::string public_only = std::string("curve\n    public-key = \"") + test_public + "\"\n";
  CHECK_THROWS_WITH_AS(parse_certificate(public_only, "x.key", true),
                       "'x.key': no secret-key: this is a public certificate, give the '_secret' file", error);
  const std::string bad_secret = public_only + "    secret-key = \"" + std::string(40, '~') + "\"\n";
  CHECK_THROWS_WITH_AS(parse_certificate(bad_secret, "x.key", true),
                       "'x.key': secret-key is not a CURVE key (40 characters of Z85)", error);
}

TEST_CASE("certificate text round-trips, and the public file carries no secret") {
  const certificate c{.name = "w1", .public_key = test_public, .secret_key = test_secret};
  CHECK(parse_certificate(format_certificate(c), "w1", true) == c);
  certificate pub = c;
  pub.secret_key.clear();
  const auto text = format_certificate(pub);
  CHECK(text.find(test_secret) == std::string::npos);
  CHECK(parse_certificate(text, "w1", false).public_key == test_public);
}

TEST_CASE("certificate pair is written 0600 and 0644, and never over existing files") {
  scratch_dir dir;
  const auto old_umask = ::umask(0); // the worst case: nothing taken away
  save_certificate_pair(dir / "k", certificate{.name = "k", .public_key = test_public, .secret_key = test_secret});
  ::umask(old_umask);
  CHECK(mode_of(dir / "k.key_secret") == 0600);
  CHECK(mode_of(dir / "k.key") == 0644);
  CHECK(load_certificate(dir / "k.key_secret", true).secret_key == test_secret);
  CHECK(load_certificate(dir / "k.key", false).secret_key.empty());
  CHECK_THROWS_WITH_AS(save_certificate_pair(dir / "k", certificate{}),
                       ("cannot write '" + (dir / "k.key_secret") + "': File exists").c_str(), error);
}

TEST_CASE("certificate loading names the file and the reason") {
  scratch_dir dir;
  CHECK_THROWS_WITH_AS(load_certificate(dir / "none", true),
                       ("cannot read key '" + (dir / "none") + "': No such file or directory").c_str(), error);
  write(dir / "junk", "junk\n");
  CHECK_THROWS_WITH_AS(
      load_certificate(dir / "junk", true),
      ("cannot read key '" + (dir / "junk") + "': not a ZeroMQ certificate (no 'curve' section)").c_str(), error);
}

TEST_CASE("certificate loading refuses a FIFO or a folder at once instead of waiting on it") {
  scratch_dir dir;
  REQUIRE(::mkfifo((dir / "fifo").c_str(), 0600) == 0);
  CHECK_THROWS_WITH_AS(load_certificate(dir / "fifo", true),
                       ("cannot read key '" + (dir / "fifo") + "': not a regular file").c_str(), error);
  CHECK_THROWS_WITH_AS(load_certificate(dir.path.string(), true),
                       ("cannot read key '" + dir.path.string() + "': not a regular file").c_str(), error);
}

TEST_CASE("certificate loading warns, as ssh does, of a secret readable by others") {
  scratch_dir dir;
  write(dir / "s", czmq_secret);
  ::chmod((dir / "s").c_str(), 0644);
  captured_log log;
  CHECK(load_certificate(dir / "s", true).name == "alice");
  REQUIRE(log.lines.size() == 1);
  CHECK(log.lines[0].find("secret key '" + (dir / "s") + "' is readable by others (mode 644): chmod 600 it") !=
        std::string::npos);
  log.lines.clear();
  ::chmod((dir / "s").c_str(), 0600);
  (void)load_certificate(dir / "s", true);
  CHECK(log.lines.empty());
}

TEST_CASE("allowlist reads every *.key in the folder, and refuses an empty or missing one") {
  scratch_dir dir;
  CHECK_THROWS_WITH_AS(load_allowlist(dir / "nope"),
                       ("cannot read --allow '" + (dir / "nope") + "': No such file or directory").c_str(), error);
  CHECK_THROWS_WITH_AS(
      load_allowlist(dir.path.string()),
      ("cannot read --allow '" + dir.path.string() + "': no public certificates (*.key) in it").c_str(), error);
  const auto pair = new_curve_keypair();
  save_certificate_pair(dir / "w1",
                        certificate{.name = "w1", .public_key = pair.public_key, .secret_key = pair.secret_key});
  write(dir / "notes.txt", "not a key\n");
  const auto keys = load_allowlist(dir.path.string());
  REQUIRE(keys.size() == 1);
  CHECK(keys.at(pair.public_key).name == "w1");
  CHECK(keys.at(pair.public_key).secret_key.empty()); // w1.key_secret is not read
}

TEST_CASE("endpoints beyond loopback are told apart from local ones") {
  CHECK(is_local_endpoint("ipc:///tmp/x"));
  CHECK(is_local_endpoint("inproc://x"));
  CHECK(is_local_endpoint("tcp://127.0.0.1:5557"));
  CHECK(is_local_endpoint("tcp://127.8.9.10:5557"));
  CHECK(is_local_endpoint("tcp://[::1]:5557"));
  CHECK(is_local_endpoint("tcp://lo:5557"));        // an interface with only loopback addresses
  CHECK(is_local_endpoint("tcp://localhost:5557")); // a name that resolves to loopback only
  CHECK_FALSE(is_local_endpoint("tcp://*:5557"));
  CHECK_FALSE(is_local_endpoint("tcp://0.0.0.0:5557"));
  CHECK_FALSE(is_local_endpoint("tcp://[::]:5557"));
  CHECK_FALSE(is_local_endpoint("tcp://198.18.0.1:5557"));
  CHECK_FALSE(is_local_endpoint("tcp://no-such-host.invalid:5557")); // unknown: assume the worst
}

TEST_CASE("security refuses a plaintext bind beyond loopback unless --insecure") {
  auto o = plaintext();
  o.ventilator = "tcp://0.0.0.0:5557";
  CHECK_THROWS_WITH_AS(load_security(o, role::ventilator),
                       "refusing to bind --ventilator 'tcp://0.0.0.0:5557' in plaintext beyond loopback: make keys "
                       "with mtask-keygen and pass --key, --allow and the peers' keys, or pass --insecure",
                       usage_error);
  CHECK_NOTHROW(load_security(o, role::worker)); // a worker binds nothing
  o.insecure = true;
  CHECK_FALSE(load_security(o, role::ventilator).curve());
  o = plaintext();
  o.sink = "tcp://*:5558";
  CHECK_THROWS_AS(load_security(o, role::sink), usage_error);
}

TEST_CASE("security refuses flags that do not go together") {
  auto o = plaintext();
  o.ventilator_key = "v.key";
  CHECK_THROWS_WITH_AS(load_security(o, role::worker),
                       "--ventilator-key needs --key (this process's own secret certificate)", usage_error);
  o = plaintext();
  o.allow = "dir";
  CHECK_THROWS_WITH_AS(load_security(o, role::sink), "--allow needs --key (this process's own secret certificate)",
                       usage_error);
  o = plaintext();
  o.key = "w.key_secret";
  CHECK_THROWS_WITH_AS(load_security(o, role::worker),
                       "--key needs --ventilator-key and --sink-key: a worker pins both servers it talks to",
                       usage_error);
  o.ventilator_key = "v.key";
  CHECK_THROWS_WITH_AS(load_security(o, role::sink),
                       "--key needs --ventilator-key (the server it joins) and --allow DIR (the workers it accepts)",
                       usage_error);
  CHECK_THROWS_WITH_AS(
      load_security(o, role::ventilator),
      "--key needs --sink-key (the only client that may act as the sink) and --allow DIR (the workers)", usage_error);
}

TEST_CASE("security refuses a key file whose public key is not its secret key's") {
  scratch_dir dir;
  const auto other = new_curve_keypair();
  write(dir / "mixed", std::string("curve\n    public-key = \"") + other.public_key + "\"\n    secret-key = \"" +
                           test_secret + "\"\n");
  ::chmod((dir / "mixed").c_str(), 0600);
  auto o = plaintext();
  o.key = dir / "mixed";
  o.ventilator_key = o.sink_key = dir / "mixed";
  CHECK_THROWS_WITH_AS(
      load_security(o, role::worker),
      ("cannot read key '" + (dir / "mixed") + "': its public-key does not belong to its secret-key").c_str(), error);
}

TEST_CASE("security lets the ventilator accept the sink's key, under its certificate's name") {
  scratch_dir dir;
  fs::create_directory(dir.path / "allow");
  for (const char* name : {"vent", "sink", "allow/w1"}) {
    const auto k = new_curve_keypair();
    save_certificate_pair(dir / name, certificate{.name = fs::path(name).filename().string(),
                                                  .public_key = k.public_key,
                                                  .secret_key = k.secret_key});
  }
  auto o = plaintext();
  o.key = dir / "vent.key_secret";
  o.sink_key = dir / "sink.key";
  o.allow = dir / "allow";
  const auto s = load_security(o, role::ventilator);
  REQUIRE(s.curve());
  const auto sink_key = load_certificate(dir / "sink.key", false).public_key;
  const auto w1_key = load_certificate(dir / "allow/w1.key", false).public_key;
  CHECK(s.sink_key == sink_key);
  CHECK(s.allowed.size() == 2);
  CHECK(s.name_of(sink_key) == "sink");
  CHECK(s.name_of(w1_key) == "w1");
  CHECK(s.name_of("nobody") == "");
  CHECK(s.server()->secret_key == s.own->secret_key);
  CHECK(s.client_of(sink_key)->server_key == sink_key);
}

TEST_CASE("certificate loading follows a Kubernetes Secret volume's symlinks and warns of its mode 0644") {
  scratch_dir dir;
  make_secret_volume(dir.path / "own", {{"vent.key_secret", czmq_secret}}, 0644);
  REQUIRE(fs::is_symlink(dir.path / "own/vent.key_secret"));
  captured_log log;
  const auto c = load_certificate(dir / "own/vent.key_secret", true);
  CHECK(c.secret_key == test_secret);
  REQUIRE(log.lines.size() == 1); // the test wrote it, so we own it: group or others bits both count
  CHECK(log.lines[0].find("is readable by others (mode 644)") != std::string::npos);
}

TEST_CASE("certificate loading does not warn of a Secret volume's 0400, nor of fsGroup's 0440 owned by root") {
  scratch_dir dir;
  make_secret_volume(dir.path / "own", {{"w.key_secret", czmq_secret}}, 0400);
  captured_log log;
  CHECK(load_certificate(dir / "own/w.key_secret", true).name == "alice");
  CHECK(log.lines.empty());
  if (::geteuid() != 0) return; // only root can give the file to another owner, as the kubelet does
  // runAsUser + fsGroup: the kubelet makes the file root:fsGroup 0440 (kubernetes#57923), and the
  // process is not root. Here, the other way round: the file is another user's, we are root.
  const auto file = dir.path / "own/..2026_12_07_09_00_00.123456789/w.key_secret";
  REQUIRE(::chown(file.c_str(), 65532, 65532) == 0);
  REQUIRE(::chmod(file.c_str(), 0440) == 0);
  CHECK(load_certificate(dir / "own/w.key_secret", true).name == "alice");
  CHECK(log.lines.empty());
  REQUIRE(::chmod(file.c_str(), 0444) == 0); // readable by anyone: still a warning
  (void)load_certificate(dir / "own/w.key_secret", true);
  CHECK(log.lines.size() == 1);
}

TEST_CASE("allowlist reads a Kubernetes Secret volume: symlinked *.key files, ..data and ..timestamp skipped") {
  scratch_dir dir;
  const auto w1 = new_curve_keypair();
  const auto w2 = new_curve_keypair();
  make_secret_volume(dir.path / "allowed", {{"w1.key", public_text("w1", w1)}, {"w2.key", public_text("w2", w2)}},
                     0644);
  // A name under `..` is the kubelet's, never a key: even one ending in .key is not read.
  write(dir / "allowed/..stale.key", "junk\n");
  captured_log log;
  const auto keys = load_allowlist(dir / "allowed");
  REQUIRE(keys.size() == 2);
  CHECK(keys.at(w1.public_key).name == "w1");
  CHECK(keys.at(w2.public_key).name == "w2");
  CHECK(log.lines.empty()); // public certificates: their mode is nobody's business
}

TEST_CASE("security loads the ventilator's keys from Kubernetes Secret volumes, as the manifests mount them") {
  scratch_dir dir;
  const auto vent = new_curve_keypair();
  const auto sink = new_curve_keypair();
  const auto worker = new_curve_keypair();
  make_secret_volume(dir.path / "own", {{"vent.key_secret", secret_text("vent", vent)}}, 0644);
  make_secret_volume(dir.path / "public",
                     {{"vent.key", public_text("vent", vent)}, {"sink.key", public_text("sink", sink)}}, 0644);
  make_secret_volume(dir.path / "allowed", {{"worker.key", public_text("worker", worker)}}, 0644);
  captured_log log;
  auto o = plaintext();
  o.ventilator = "tcp://0.0.0.0:5557";
  o.key = dir / "own/vent.key_secret";
  o.sink_key = dir / "public/sink.key";
  o.allow = dir / "allowed";
  const auto s = load_security(o, role::ventilator);
  REQUIRE(s.curve());
  CHECK(s.own->public_key == vent.public_key);
  CHECK(s.sink_key == sink.public_key);
  CHECK(s.name_of(worker.public_key) == "worker");
  CHECK(s.name_of(sink.public_key) == "sink");
  CHECK(s.allowed.size() == 2);
}
