#pragma once
// Result<T>: a value or a std::error_code. Shaped like std::expected so that a later switch to
// C++23 is a `using`. The data plane returns these instead of throwing.

#include <cerrno>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

namespace lbd {

/// The error half of a Result, constructible from an errno value or an error_code.
struct Error {
  std::error_code code;

  Error() = default;
  explicit Error(std::error_code c) : code(c) {}
  static Error from_errno(int e) { return Error{std::error_code(e, std::system_category())}; }
  /// errno of the current thread.
  static Error last() { return from_errno(errno); }

  int value() const { return code.value(); }
  std::string message() const { return code.message(); }
  bool is(int errno_value) const {
    return code.category() == std::system_category() && code.value() == errno_value;
  }
};

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit like expected
  Result(Error e) : v_(std::in_place_index<1>, e) {}                 // NOLINT

  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const { return std::get<1>(v_); }
  /// errno value of the error; 0 when this holds a value.
  int errno_value() const { return has_value() ? 0 : error().value(); }

  template <class U>
  T value_or(U&& fallback) const& {
    return has_value() ? value() : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  // A success holds no error_code: building one calls into libstdc++ (system_category()),
  // which every successful write would pay for.
  Result() = default;
  Result(Error e) : v_(std::in_place_index<1>, e) {}  // NOLINT

  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }
  void value() const {}
  /// The error; a zero Error when this holds success.
  const Error& error() const {
    if (const Error* e = std::get_if<1>(&v_)) return *e;
    static const Error kNone;
    return kNone;
  }
  int errno_value() const { return has_value() ? 0 : error().value(); }

 private:
  std::variant<std::monostate, Error> v_;
};

/// Builds a Result error from an errno value: `return errno_error(EINVAL);`
inline Error errno_error(int e) { return Error::from_errno(e); }

/// Turns a syscall's return (-1 + errno) into a Result.
template <class T>
Result<T> syscall_result(T ret) {
  if (ret < 0) return Error::last();
  return ret;
}

}  // namespace lbd
