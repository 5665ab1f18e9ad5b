#pragma once
// The client side's session cache (ClientContext) and how a connection finds it from OpenSSL's
// new-session callback. Private to proxy/tls/.

#include <openssl/ssl.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>

#include "proxy/tls/detail/openssl_ptr.hpp"

namespace lbd::tls::detail {

/// Sessions to resume, one per session key (an upstream endpoint): the newest one the server
/// gave. Bounded; when full the least recently stored goes. One thread (the worker's).
struct ClientCache {
  explicit ClientCache(std::size_t max) : max_entries(max) {}
  /// Takes over `s` (a reference the caller owns).
  void put(const std::string& key, SSL_SESSION* s);
  /// The session for `key`, still owned by the cache; null if none.
  SSL_SESSION* get(const std::string& key) const;
  void erase(const std::string& key) { entries.erase(key); }

  struct Entry {
    SessionPtr session;
    uint64_t stamp = 0;
  };
  std::size_t max_entries;
  uint64_t next_stamp = 0;
  std::unordered_map<std::string, Entry> entries;
};

/// Hung on a client SSL (ex_data at client_slot_index()) so the new-session callback knows
/// where the session goes. Owned by the TlsStream.
struct ClientSlot {
  ClientCache* cache = nullptr;  // the ClientContext's; it outlives its connections
  std::string key;
};

int client_slot_index();

}  // namespace lbd::tls::detail
