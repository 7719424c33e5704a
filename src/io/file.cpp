// tg::io files: reading a file whole, and the atomic save (temporary file, fsync, rename),
// with the test hook that makes the next save fail part-way as a full disk would.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <optional>
#include <random>
#include <system_error>
#include <utility>

#include "io/internal.hpp"
#include "tapegrad/error.hpp"
#include "tapegrad/io.hpp"

namespace tg::io {

namespace {

thread_local std::optional<std::size_t> fail_writes_after_bytes;

std::string system_message(int error)
{
    return std::error_code(error, std::generic_category()).message();
}

// Opened file descriptor, closed on every path out.
struct Fd {
    int fd = -1;
    ~Fd()
    {
        if (fd >= 0) ::close(fd);
    }
};

void write_all(int fd, const std::string& bytes, std::optional<std::size_t> fail_after, const std::string& where)
{
    const std::size_t todo = fail_after ? std::min(*fail_after, bytes.size()) : bytes.size();
    std::size_t done = 0;
    while (done < todo) {
        const ssize_t n = ::write(fd, bytes.data() + done, todo - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw Error(where + ": write failed (" + system_message(errno) + ")");
        done += static_cast<std::size_t>(n);
    }
    if (fail_after) {
        throw Error(where + ": write failed after " + std::to_string(done) +
                    " bytes (simulated by tg::io::detail::fail_writes_after)");
    }
}

}  // namespace

File load(const std::string& path)
{
    return parse(detail::read_file(path, path), path);
}

void save(const std::string& path, const File& file)
{
    const std::optional<std::size_t> fail_after = detail::take_write_failure();
    detail::write_atomically(path, detail::serialize_as(file, path), fail_after, path);
}

namespace detail {

std::string read_file(const std::string& path, const std::string& where)
{
    Fd in;
    in.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (in.fd < 0) throw Error(where + ": cannot open the file (" + system_message(errno) + ")");
    struct stat st {};
    if (::fstat(in.fd, &st) != 0) throw Error(where + ": cannot stat the file (" + system_message(errno) + ")");
    if (!S_ISREG(st.st_mode)) throw Error(where + ": not a regular file");
    std::string out;
    out.reserve(static_cast<std::size_t>(st.st_size));
    char buffer[1 << 16];
    for (;;) {
        const ssize_t n = ::read(in.fd, buffer, sizeof buffer);
        if (n == 0) break;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw Error(where + ": read failed (" + system_message(errno) + ")");
        out.append(buffer, static_cast<std::size_t>(n));
    }
    return out;
}

void write_atomically(const std::string& path, const std::string& bytes, std::optional<std::size_t> fail_after,
                      const std::string& where)
{
    // Not mkstemp: it creates the file with mode 0600, which the rename would hand on to the
    // checkpoint. O_EXCL with mode 0666 gives the same uniqueness and lets the umask decide.
    static thread_local std::mt19937_64 gen{std::random_device{}()};
    Fd out;
    std::string temp;
    for (int attempt = 0; out.fd < 0; ++attempt) {
        char suffix[32];
        std::snprintf(suffix, sizeof suffix, ".tmp.%016llx", static_cast<unsigned long long>(gen()));
        temp = path + suffix;
        out.fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (out.fd < 0 && (errno != EEXIST || attempt == 100)) {
            throw Error(where + ": cannot create a temporary file next to it (" + system_message(errno) + ")");
        }
    }
    try {
        write_all(out.fd, bytes, fail_after, where);
        if (::fsync(out.fd) != 0) throw Error(where + ": fsync failed (" + system_message(errno) + ")");
        const int closed = ::close(out.fd);
        out.fd = -1;
        if (closed != 0) throw Error(where + ": close failed (" + system_message(errno) + ")");
        if (std::rename(temp.c_str(), path.c_str()) != 0) {
            throw Error(where + ": cannot rename the temporary file over it (" + system_message(errno) + ")");
        }
    } catch (...) {
        if (out.fd >= 0) ::close(out.fd);
        out.fd = -1;
        std::remove(temp.c_str());
        throw;
    }
    // Make the rename itself durable. Best effort: some file systems refuse to fsync a
    // directory, and the new file is complete either way.
    const auto slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    Fd d;
    d.fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d.fd >= 0) ::fsync(d.fd);
}

std::optional<std::size_t> take_write_failure()
{
    return std::exchange(fail_writes_after_bytes, std::nullopt);
}

void fail_writes_after(std::size_t bytes)
{
    fail_writes_after_bytes = bytes;
}

}  // namespace detail

}  // namespace tg::io
