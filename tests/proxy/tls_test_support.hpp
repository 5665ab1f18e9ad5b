#pragma once
// Test PKI for the TLS tests: keys and certificates made at test time with OpenSSL (nothing
// secret is committed), written as PEM files into a temporary directory that goes away with
// the object. A CA signs leaf certificates for the names a test asks for; RSA and ECDSA keys;
// validity windows in the past or the future for the loading tests.

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

namespace lbd::tls::test {

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using X509Owner = std::unique_ptr<X509, X509Free>;
using PkeyOwner = std::unique_ptr<EVP_PKEY, PkeyFree>;

enum class KeyKind { kRsa, kEcdsa };

inline PkeyOwner make_key(KeyKind kind) {
  if (kind == KeyKind::kRsa) return PkeyOwner(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048)));
  return PkeyOwner(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
}

struct CertSpec {
  std::string cn;
  std::vector<std::string> dns;  // SAN DNS names; none: the certificate has no SAN
  long valid_from = -3600;       // seconds from now
  long valid_to = 30L * 86400;
  bool ca = false;
};

inline void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext) {
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
  }
}

/// A certificate for `key`, signed by `issuer`/`issuer_key` (self-signed when null).
inline X509Owner make_cert(const CertSpec& spec, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key) {
  static long serial = 1;
  X509Owner cert(X509_new());
  X509* x = cert.get();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
  X509_gmtime_adj(X509_getm_notBefore(x), spec.valid_from);
  X509_gmtime_adj(X509_getm_notAfter(x), spec.valid_to);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("lbd tests"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(spec.cn.c_str()), -1,
                             -1, 0);
  X509* signer = issuer ? issuer : x;
  X509_set_issuer_name(x, X509_get_subject_name(signer));
  add_ext(x, signer, NID_subject_key_identifier, "hash");
  if (issuer) add_ext(x, signer, NID_authority_key_identifier, "keyid:always");
  if (spec.ca) {
    add_ext(x, signer, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(x, signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_ext(x, signer, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(x, signer, NID_ext_key_usage, "serverAuth,clientAuth");
  }
  if (!spec.dns.empty()) {
    std::string san;
    for (const std::string& d : spec.dns) {
      if (!san.empty()) san += ',';
      san += "DNS:" + d;
    }
    add_ext(x, signer, NID_subject_alt_name, san);
  }
  X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256());
  return cert;
}

inline std::string pem_of(X509* x) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, x);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<std::size_t>(n));
  BIO_free(bio);
  return out;
}

inline std::string pem_of(EVP_PKEY* k) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, k, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<std::size_t>(n));
  BIO_free(bio);
  return out;
}

/// A temporary directory, removed with everything in it when this goes.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "lbd-tls-XXXXXX").string();
    if (char* p = ::mkdtemp(tmpl.data())) path_ = p;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  /// Writes `text` to `name` in the directory; returns the file's path.
  std::string write(const std::string& name, const std::string& text) const {
    std::string p = path_ + "/" + name;
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }

 private:
  std::string path_;
};

/// A CA and what it issued, as files.
class TestPki {
 public:
  struct Issued {
    std::string chain_file;  // the leaf, then the CA
    std::string key_file;
    std::string subject_cn;
  };

  explicit TestPki(std::string ca_name = "lbd test CA") {
    ca_key_ = make_key(KeyKind::kEcdsa);
    CertSpec spec;
    spec.cn = std::move(ca_name);
    spec.ca = true;
    spec.valid_to = 365L * 86400;
    ca_ = make_cert(spec, ca_key_.get(), nullptr, nullptr);
    ca_file_ = dir_.write("ca-" + std::to_string(counter_++) + ".pem", pem_of(ca_.get()));
  }

  /// A leaf certificate and key under `file_stem`.pem / .key.
  Issued issue(const std::string& file_stem, const CertSpec& spec, KeyKind kind = KeyKind::kEcdsa) {
    PkeyOwner key = make_key(kind);
    X509Owner cert = make_cert(spec, key.get(), ca_.get(), ca_key_.get());
    Issued out;
    out.chain_file = dir_.write(file_stem + ".pem", pem_of(cert.get()) + pem_of(ca_.get()));
    out.key_file = dir_.write(file_stem + ".key", pem_of(key.get()));
    out.subject_cn = spec.cn;
    return out;
  }
  /// A leaf for host names `dns` (CN = the first).
  Issued issue_for(const std::string& file_stem, std::vector<std::string> dns, KeyKind kind = KeyKind::kEcdsa) {
    CertSpec spec;
    spec.cn = dns.empty() ? file_stem : dns.front();
    spec.dns = std::move(dns);
    return issue(file_stem, spec, kind);
  }
  /// Just a key, matching nothing.
  std::string stray_key(const std::string& file_stem) {
    PkeyOwner key = make_key(KeyKind::kEcdsa);
    return dir_.write(file_stem + ".key", pem_of(key.get()));
  }

  const std::string& ca_file() const { return ca_file_; }
  const TempDir& dir() const { return dir_; }

 private:
  inline static int counter_ = 0;
  TempDir dir_;
  PkeyOwner ca_key_;
  X509Owner ca_;
  std::string ca_file_;
};

}  // namespace lbd::tls::test
