// CURVE certificates on disk, in ZeroMQ's certificate text format (what czmq's zcert_save
// writes): a `metadata` section with the holder's name and a `curve` section with Z85 keys.
// Pure text and files: no sockets; the keys themselves are made in transport/curve.cpp.
#pragma once

#include <map>
#include <string>
#include <string_view>

namespace mtask {

struct certificate {
  std::string name;       // metadata "name": who holds the key, shown in logs
  std::string public_key; // Z85, 40 characters
  std::string secret_key; // Z85, 40 characters; empty in a public certificate
  friend bool operator==(const certificate&, const certificate&) = default;
};

// Returns: whether `key` is 40 characters of the Z85 alphabet (a 32-byte CURVE key).
[[nodiscard]] bool is_z85_key(std::string_view key);

// Returns: `text` as a certificate.
// Throws: error "'WHERE': REASON" when a section or key is missing, a key is not 40 characters
//         of Z85, or (need_secret) there is no secret key.
certificate parse_certificate(std::string_view text, std::string_view where, bool need_secret);

// Returns: the certificate text for `c`: the secret file's when `c.secret_key` is set, else the
// public file's.
std::string format_certificate(const certificate& c);

// Reads a certificate file, through symlinks. A secret one readable by others, or by group or
// others when we own it, is used with a warning (as ssh does for its keys).
// Throws: error "cannot read key 'PATH': REASON" (missing, unreadable, wrong format).
certificate load_certificate(const std::string& path, bool need_secret);

// Reads every public certificate (`*.key`, symlinks followed) in `dir`: the clients a server
// accepts, by public key. Names starting with `..` are skipped: Kubernetes' bookkeeping in a
// Secret volume.
// Throws: error "cannot read --allow 'DIR': REASON", or the first bad file's error. An empty
//         folder is an error too: it would refuse everyone.
std::map<std::string, certificate> load_allowlist(const std::string& dir);

// Writes `path` (mode 0644, never overwriting a file): `c`'s public certificate.
// Throws: error "cannot write 'FILE': REASON".
void save_public_certificate(const std::string& path, const certificate& c);

// Writes PATH.key (public, mode 0644) and PATH.key_secret (mode 0600, created so: never readable
// by others, not even for a moment).
// Throws: error "cannot write 'FILE': REASON"; existing files are not overwritten.
void save_certificate_pair(const std::string& path, const certificate& c);

} // namespace mtask
