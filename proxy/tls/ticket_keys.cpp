#include "proxy/tls/ticket_keys.hpp"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <cerrno>
#include <cstring>

namespace lbd::tls {
namespace {

bool fill_random(TicketKeys::Key& k) {
  return RAND_bytes(k.name.data(), static_cast<int>(k.name.size())) == 1 &&
         RAND_bytes(k.hmac.data(), static_cast<int>(k.hmac.size())) == 1 &&
         RAND_bytes(k.aes.data(), static_cast<int>(k.aes.size())) == 1;
}

}  // namespace

Result<std::shared_ptr<const TicketKeys>> TicketKeys::generate() {
  std::shared_ptr<TicketKeys> keys(new TicketKeys());
  if (!fill_random(keys->current_)) return errno_error(EIO);
  return std::shared_ptr<const TicketKeys>(std::move(keys));
}

Result<std::shared_ptr<const TicketKeys>> TicketKeys::rotate() const {
  std::shared_ptr<TicketKeys> keys(new TicketKeys());
  if (!fill_random(keys->current_)) return errno_error(EIO);
  keys->previous_ = current_;
  return std::shared_ptr<const TicketKeys>(std::move(keys));
}

const TicketKeys::Key* TicketKeys::find(std::span<const unsigned char, 16> name, bool* is_current) const {
  if (std::memcmp(name.data(), current_.name.data(), name.size()) == 0) {
    *is_current = true;
    return &current_;
  }
  if (previous_ && std::memcmp(name.data(), previous_->name.data(), name.size()) == 0) {
    *is_current = false;
    return &*previous_;
  }
  return nullptr;
}

TicketKeys::~TicketKeys() {
  // Key material should not linger in freed memory.
  OPENSSL_cleanse(&current_, sizeof(current_));
  if (previous_) OPENSSL_cleanse(&*previous_, sizeof(*previous_));
}

}  // namespace lbd::tls
