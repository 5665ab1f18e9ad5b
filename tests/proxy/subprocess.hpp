#pragma once
// Runs a helper program (promtool, chromium) from a test: stdin from a string through a pipe,
// stdout and stderr collected apart, killed (with its whole process group: chromium forks
// renderers) when it outlives its limit. Blocking; call it from a plain thread or through
// spawn_blocking when a runtime must keep serving meanwhile.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <chrono>
#include <string>
#include <vector>

extern char** environ;

namespace lbd::test {

struct CommandResult {
  bool started = false;   // false: the program could not be run at all
  bool timed_out = false;
  int exit_code = -1;     // when it exited normally
  std::string output;     // stdout
  std::string errors;     // stderr
  bool ok() const { return started && !timed_out && exit_code == 0; }
};

/// Runs `argv` (argv[0] is looked up in PATH) with `input` on its stdin.
inline CommandResult run_command(const std::vector<std::string>& argv, const std::string& input = {},
                                 std::chrono::milliseconds limit = std::chrono::seconds(60)) {
  CommandResult out;
  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) != 0) return out;
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
    ::close(in_pipe[0]);
    ::close(in_pipe[1]);
    return out;
  }
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    for (int fd : {in_pipe[0], in_pipe[1], out_pipe[0], out_pipe[1]}) ::close(fd);
    return out;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in_pipe[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, args[0], &fa, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (rc != 0) {
    ::close(in_pipe[1]);
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    out.errors = "cannot run " + argv[0] + ": " + std::string(::strerror(rc));
    return out;
  }
  out.started = true;
  ::fcntl(in_pipe[1], F_SETFL, O_NONBLOCK);
  int in_fd = in_pipe[1];
  std::size_t written = 0;
  if (input.empty()) {
    ::close(in_fd);
    in_fd = -1;
  }
  const auto deadline = std::chrono::steady_clock::now() + limit;
  char buf[16384];
  int read_fds[2] = {out_pipe[0], err_pipe[0]};
  std::string* sinks[2] = {&out.output, &out.errors};
  while (read_fds[0] >= 0 || read_fds[1] >= 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      out.timed_out = true;
      ::kill(-pid, SIGKILL);
      break;
    }
    // A negative fd is ignored by poll(2).
    pollfd fds[3] = {{read_fds[0], POLLIN, 0}, {read_fds[1], POLLIN, 0}, {in_fd, POLLOUT, 0}};
    int n = ::poll(fds, 3, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;
    if (in_fd >= 0 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t w = ::write(in_fd, input.data() + written, input.size() - written);
      if (w > 0) written += static_cast<std::size_t>(w);
      if (w < 0 && errno != EAGAIN) written = input.size();  // the program stopped reading
      if (written == input.size()) {
        ::close(in_fd);
        in_fd = -1;
      }
    }
    for (int i = 0; i < 2; ++i) {
      if (read_fds[i] < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t r = ::read(read_fds[i], buf, sizeof(buf));
      if (r > 0) {
        sinks[i]->append(buf, static_cast<std::size_t>(r));
      } else if (r == 0 || errno != EINTR) {
        ::close(read_fds[i]);  // EOF: every writer (the program and its children) is gone
        read_fds[i] = -1;
      }
    }
  }
  for (int fd : read_fds)
    if (fd >= 0) ::close(fd);
  if (in_fd >= 0) ::close(in_fd);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!out.timed_out && WIFEXITED(status)) out.exit_code = WEXITSTATUS(status);
  ::kill(-pid, SIGKILL);  // renderers or crash handlers that outlived their parent
  return out;
}

/// The program's full path when it is in PATH; empty otherwise.
inline std::string find_program(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= p.size()) {
    std::size_t end = p.find(':', start);
    if (end == std::string::npos) end = p.size();
    std::string candidate = p.substr(start, end - start) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return {};
}

}  // namespace lbd::test
