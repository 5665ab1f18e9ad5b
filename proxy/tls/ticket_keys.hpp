#pragma once
// Session-ticket keys (RFC 5077; TLS 1.3 tickets too). A ticket is the session state encrypted
// and authenticated under a key of the server's; whichever worker holds that key can resume it.
//
// Sharing without locks: a TicketKeys object is immutable once built. The control thread builds
// one at start-up (generate()) and, on every rotation, a new one from the old (rotate()), and
// posts the shared_ptr to every worker; each worker swaps it into its own ServerContext
// (ServerContext::set_ticket_keys) on its own thread. Workers only read the keys, and the
// shared_ptr's reference count is the only thing they touch in common (atomic). While a
// rotation is on its way to the workers, tickets under the old key resume everywhere; a ticket
// issued under the new key and shown to a worker that has not taken it yet costs one full
// handshake, not an error.

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>

#include "runtime/result.hpp"

namespace lbd::tls {

class TicketKeys {
 public:
  /// One key: its name travels in the ticket so the server can find the key again.
  struct Key {
    std::array<unsigned char, 16> name{};
    std::array<unsigned char, 32> hmac{};  // HMAC-SHA256 over the ticket
    std::array<unsigned char, 32> aes{};   // AES-256-CBC of the session state
  };

  /// Fresh random keys: a current one and no previous one. Fails only if the system's random
  /// source does.
  static Result<std::shared_ptr<const TicketKeys>> generate();
  /// The next generation: a new random current key; this object's current key becomes the
  /// previous one (still accepted, so tickets issued before the rotation resume; the one before
  /// is dropped).
  Result<std::shared_ptr<const TicketKeys>> rotate() const;

  /// New tickets are encrypted under this key.
  const Key& current() const { return current_; }
  /// The key named `name`, or null. `*is_current` says which of the two it is.
  const Key* find(std::span<const unsigned char, 16> name, bool* is_current) const;

  TicketKeys(const TicketKeys&) = delete;
  TicketKeys& operator=(const TicketKeys&) = delete;
  ~TicketKeys();

 private:
  TicketKeys() = default;
  Key current_;
  std::optional<Key> previous_;
};

}  // namespace lbd::tls
