// Small helpers over OpenSSL shared by the TLS module's sources.

#include <openssl/err.h>

#include <cctype>

#include "proxy/tls/detail/openssl_ptr.hpp"
#include "proxy/tls/detail/session_cache.hpp"

namespace lbd::tls::detail {

std::string drain_errors(std::vector<int>* reasons) {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    if (reasons) reasons->push_back(ERR_GET_REASON(e));
    const char* reason = ERR_reason_error_string(e);
    std::string text;
    if (reason) {
      text = reason;
    } else {
      char buf[256];
      ERR_error_string_n(e, buf, sizeof(buf));
      text = buf;
    }
    // OpenSSL queues the same reason at several levels of its stack.
    if (out.find(text) != std::string::npos) continue;
    if (!out.empty()) out += "; ";
    out += text;
  }
  return out;
}

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string();
}

std::string name_text(const X509_NAME* name) {
  if (!name) return {};
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) return {};
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253);
  return bio_text(bio.get());
}

std::string alpn_wire(const std::vector<std::string>& names) {
  std::string wire;
  for (const std::string& n : names) {
    if (n.empty() || n.size() > 255) return {};
    wire.push_back(static_cast<char>(n.size()));
    wire += n;
  }
  return wire;
}

std::string normalize_host(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  std::string out(name);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

void ClientCache::put(const std::string& key, SSL_SESSION* s) {
  SessionPtr owned(s);
  auto it = entries.find(key);
  if (it == entries.end() && entries.size() >= max_entries) {
    auto oldest = entries.begin();
    for (auto e = entries.begin(); e != entries.end(); ++e)
      if (e->second.stamp < oldest->second.stamp) oldest = e;
    if (oldest != entries.end()) entries.erase(oldest);
  }
  if (max_entries == 0) return;
  Entry& e = entries[key];
  e.session = std::move(owned);
  e.stamp = next_stamp++;
}

SSL_SESSION* ClientCache::get(const std::string& key) const {
  auto it = entries.find(key);
  return it == entries.end() ? nullptr : it->second.session.get();
}

int client_slot_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

}  // namespace lbd::tls::detail
