// Start-up driver selection (runtime/detail/driver_select.cpp, io_uring_driver.cpp init):
// io_uring when it works, epoll when io_uring is denied, LBD_IO to force either.
//
// The seccomp cases run in a forked child: a filter cannot be removed once installed. The
// filter is what Docker's default profile does to io_uring: io_uring_setup fails with EPERM.

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include <string>

#include "runtime/net.hpp"
#include "runtime/runtime.hpp"
#include "runtime/spawn.hpp"
#include "tests/runtime/runtime_test_support.hpp"

namespace lbd {
namespace {

using namespace std::chrono_literals;

#if defined(__x86_64__)
constexpr uint32_t kAuditArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr uint32_t kAuditArch = AUDIT_ARCH_AARCH64;
#else
#error "add this architecture's AUDIT_ARCH_* value"
#endif

/// Makes io_uring_setup fail with `err` in this process (for good). Every other syscall, and
/// syscalls of a foreign ABI, are allowed.
bool deny_io_uring_setup(int err, std::string& why) {
  sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kAuditArch, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (static_cast<uint32_t>(err) & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog{static_cast<unsigned short>(std::size(filter)), filter};
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    why = std::string("prctl(PR_SET_NO_NEW_PRIVS): ") + std::strerror(errno);
    return false;
  }
  if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
    why = std::string("prctl(PR_SET_SECCOMP): ") + std::strerror(errno);
    return false;
  }
  // The filter works: the raw syscall now fails with `err`.
  long r = ::syscall(__NR_io_uring_setup, 1, nullptr);
  if (r != -1 || errno != err) {
    why = "io_uring_setup was not denied by the filter";
    return false;
  }
  return true;
}

Task<void> echo_one(TcpListener* l) {
  auto s = co_await l->accept();
  if (!s) co_return;
  std::string got = co_await test::read_to_eof(&*s);
  (void)co_await s->write_all(Buffer::copy_of(got));
}

/// One echo round trip over loopback; "" on success, else what failed.
Task<std::string> echo_round_trip() {
  auto l = TcpListener::bind(SocketAddress::ipv4_loopback(0));
  if (!l) co_return "bind: " + l.error().message();
  auto addr = l->local_address();
  if (!addr) co_return "getsockname: " + addr.error().message();
  auto server = spawn(echo_one(&*l));
  auto c = co_await TcpStream::connect(*addr, 5s);
  if (!c) co_return "connect: " + c.error().message();
  std::string msg = test::random_bytes(20'000, 3);
  auto [w, b] = co_await c->write_all(Buffer::copy_of(msg));
  if (!w) co_return "write: " + w.error().message();
  if (auto r = c->shutdown_write(); !r) co_return "shutdown: " + r.error().message();
  std::string back = co_await test::read_to_eof(&*c);
  co_await server;
  if (back != msg) co_return "echo mismatch: sent " + std::to_string(msg.size()) + ", got " + std::to_string(back.size());
  co_return "";
}

/// In a child with io_uring_setup denied by `err`, builds a runtime in `mode` and reports
/// "name\nreason\necho-result".
test::ChildOutcome runtime_under_seccomp(int err, IoMode mode) {
  return test::run_in_child([err, mode](int report) {
    std::string why;
    if (!deny_io_uring_setup(err, why)) {
      test::write_report(report, "SECCOMP-FAILED\n" + why + "\n");
      return 2;
    }
    ::unsetenv("LBD_IO");
    RuntimeOptions opts;
    opts.io = mode;
    Runtime rt(opts);
    std::string echo = rt.block_on(echo_round_trip());
    test::write_report(report, rt.driver_info().name + "\n" + rt.driver_info().reason + "\n" + echo);
    return 0;
  });
}

struct Report {
  std::string name, reason, echo;
};
Report parse(const std::string& s) {
  Report r;
  auto a = s.find('\n');
  auto b = a == std::string::npos ? a : s.find('\n', a + 1);
  r.name = s.substr(0, a);
  if (a != std::string::npos) r.reason = s.substr(a + 1, b == std::string::npos ? b : b - a - 1);
  if (b != std::string::npos) r.echo = s.substr(b + 1);
  return r;
}

TEST(DriverSelectTest, SeccompDeniedIoUringFallsBackToEpoll) {
  auto child = runtime_under_seccomp(EPERM, IoMode::kAuto);
  ASSERT_TRUE(child.exited_ok()) << child.describe() << "; report: " << child.report;
  Report r = parse(child.report);
  EXPECT_EQ(r.name, "epoll");
  EXPECT_NE(r.reason.find("Operation not permitted"), std::string::npos) << "reason: " << r.reason;
  EXPECT_NE(r.reason.find("io_uring"), std::string::npos) << "reason: " << r.reason;
  EXPECT_EQ(r.echo, "") << "echo on the fallback driver failed";
}

TEST(DriverSelectTest, SeccompDeniedIoUringForcedStillRunsOnEpoll) {
  // io: io_uring cannot be honoured; the runtime says so and runs on epoll.
  auto child = runtime_under_seccomp(EPERM, IoMode::kIoUring);
  ASSERT_TRUE(child.exited_ok()) << child.describe() << "; report: " << child.report;
  Report r = parse(child.report);
  EXPECT_EQ(r.name, "epoll");
  EXPECT_NE(r.reason.find("Operation not permitted"), std::string::npos) << "reason: " << r.reason;
  EXPECT_EQ(r.echo, "");
}

TEST(DriverSelectTest, KernelWithoutIoUringFallsBackToEpoll) {
  auto child = runtime_under_seccomp(ENOSYS, IoMode::kAuto);
  ASSERT_TRUE(child.exited_ok()) << child.describe() << "; report: " << child.report;
  Report r = parse(child.report);
  EXPECT_EQ(r.name, "epoll");
  EXPECT_NE(r.reason.find("Function not implemented"), std::string::npos) << "reason: " << r.reason;
  EXPECT_EQ(r.echo, "");
}

/// Whether io_uring can be set up here at all (decides skips).
bool io_uring_usable(std::string& why) {
  test::ScopedEnv no_env("LBD_IO", nullptr);
  RuntimeOptions opts;
  opts.io = IoMode::kIoUring;
  Runtime rt(opts);
  why = rt.driver_info().reason;
  return rt.driver_info().name == "io_uring";
}

TEST(DriverSelectTest, AutoPicksIoUringWhenAvailable) {
  test::ScopedEnv no_env("LBD_IO", nullptr);
  Runtime rt;
  const DriverInfo& info = rt.driver_info();
  EXPECT_FALSE(info.reason.empty());
  EXPECT_FALSE(info.features.empty());
  if (info.name == "epoll") GTEST_SKIP() << "io_uring is not usable here: " << info.reason;
  EXPECT_EQ(info.name, "io_uring");
  EXPECT_EQ(info.reason, "io_uring available");
}

TEST(DriverSelectTest, LbdIoEnvForcesEpoll) {
  test::ScopedEnv env("LBD_IO", "epoll");
  Runtime rt;  // io: auto
  EXPECT_EQ(rt.driver_info().name, "epoll");
  EXPECT_NE(rt.driver_info().reason.find("LBD_IO=epoll"), std::string::npos) << rt.driver_info().reason;
  std::string echo = test::run_bounded(rt, echo_round_trip(), 10s);
  EXPECT_EQ(echo, "");
}

TEST(DriverSelectTest, LbdIoEnvForcesIoUring) {
  std::string why;
  if (!io_uring_usable(why)) GTEST_SKIP() << "io_uring is not usable here: " << why;
  test::ScopedEnv env("LBD_IO", "io_uring");
  Runtime rt;  // io: auto
  EXPECT_EQ(rt.driver_info().name, "io_uring");
  EXPECT_NE(rt.driver_info().reason.find("LBD_IO=io_uring"), std::string::npos) << rt.driver_info().reason;
  std::string echo = test::run_bounded(rt, echo_round_trip(), 10s);
  EXPECT_EQ(echo, "");
}

TEST(DriverSelectTest, UnknownLbdIoValueIsIgnored) {
  test::ScopedEnv env("LBD_IO", "kqueue-please");
  Runtime rt;
  EXPECT_TRUE(rt.driver_info().name == "io_uring" || rt.driver_info().name == "epoll");
  EXPECT_EQ(rt.driver_info().reason.find("LBD_IO"), std::string::npos) << rt.driver_info().reason;
}

TEST(DriverSelectTest, ExplicitOptionPicksTheDriver) {
  test::ScopedEnv no_env("LBD_IO", nullptr);
  {
    RuntimeOptions opts;
    opts.io = IoMode::kEpoll;
    Runtime rt(opts);
    EXPECT_EQ(rt.driver_info().name, "epoll");
    EXPECT_NE(rt.driver_info().reason.find("io: epoll"), std::string::npos) << rt.driver_info().reason;
  }
  std::string why;
  if (!io_uring_usable(why)) GTEST_SKIP() << "io_uring is not usable here: " << why;
  RuntimeOptions opts;
  opts.io = IoMode::kIoUring;
  Runtime rt(opts);
  EXPECT_EQ(rt.driver_info().name, "io_uring");
  EXPECT_NE(rt.driver_info().reason.find("io: io_uring"), std::string::npos) << rt.driver_info().reason;
}

// io_uring with the provided-buffer ring turned off still reads through read_pooled.
class NoBufRingTest : public test::RuntimeTest {
 protected:
  RuntimeOptions options() override {
    RuntimeOptions o;
    o.provided_buffers = false;
    return o;
  }
};
LBD_INSTANTIATE_FOR_DRIVERS(NoBufRingTest);

Task<void> pooled_without_ring() {
  auto pair = co_await test::make_tcp_pair();
  CO_ASSERT_OK(pair);
  auto [w, b] = co_await pair->client.write_all(Buffer::copy_of("no ring"));
  CO_ASSERT_OK(w);
  auto r = co_await pair->server.read_pooled();
  CO_ASSERT_OK(r);
  EXPECT_EQ(r->view(), "no ring");
}

TEST_P(NoBufRingTest, ReadPooledWorksWithoutProvidedBuffers) {
  EXPECT_EQ(rt().driver_info().features.find("buf_ring"), std::string::npos);
  run(pooled_without_ring());
}

}  // namespace
}  // namespace lbd
