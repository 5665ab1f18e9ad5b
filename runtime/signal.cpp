#include "runtime/signal.hpp"

#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>

#include <cstring>

namespace lbd {

Result<SignalSet> SignalSet::create(std::initializer_list<int> signals) {
  sigset_t set;
  sigemptyset(&set);
  for (int s : signals) sigaddset(&set, s);
  if (int e = pthread_sigmask(SIG_BLOCK, &set, nullptr); e != 0) return errno_error(e);
  int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) return Error::last();
  return SignalSet(Socket(UniqueFd(fd)));
}

Task<Result<int>> SignalSet::next() {
  Op* op = detail::new_op(OpCode::kRead, fd_.fd());
  op->buf = Buffer(sizeof(signalfd_siginfo));
  auto [res, buf] = co_await IoAwaiter<detail::ExtractRead>(op);
  if (!res) co_return res.error();
  if (*res != sizeof(signalfd_siginfo)) co_return errno_error(EIO);
  signalfd_siginfo info;
  std::memcpy(&info, buf.data(), sizeof(info));
  co_return static_cast<int>(info.ssi_signo);
}

}  // namespace lbd
