#include "proxy/http/message_head.hpp"

namespace lbd::http {

std::string_view to_string(HttpVersion v) {
  return v == HttpVersion::kHttp10 ? "HTTP/1.0" : "HTTP/1.1";
}

std::string_view RequestHead::origin_target() const {
  return target_form == TargetForm::kAbsolute ? std::string_view(absolute_origin)
                                              : std::string_view(target);
}

std::string_view RequestHead::path() const {
  std::string_view t = origin_target();
  return t.substr(0, t.find('?'));
}

void RequestHead::clear() {
  method.clear();
  target.clear();
  target_form = TargetForm::kOrigin;
  version = HttpVersion::kHttp11;
  headers.clear();
  framing = BodyFraming::none();
  keep_alive = true;
  expect_continue = false;
  upgrade = false;
  host.clear();
  absolute_origin.clear();
}

void ResponseHead::clear() {
  version = HttpVersion::kHttp11;
  status = 0;
  reason.clear();
  headers.clear();
  framing = BodyFraming::none();
  keep_alive = true;
}

}  // namespace lbd::http
