#pragma once
// What the dist subsystem's files share: MPI datatypes for tapegrad's scalar types, calls
// that take counts beyond INT_MAX, and agreement on an error among all ranks.

#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace tg::dist::detail {

template <class T> MPI_Datatype mpi_type();
template <> inline MPI_Datatype mpi_type<float>()
{
    return MPI_FLOAT;
}
template <> inline MPI_Datatype mpi_type<double>()
{
    return MPI_DOUBLE;
}
template <> inline MPI_Datatype mpi_type<std::int64_t>()
{
    return MPI_INT64_T;
}
template <> inline MPI_Datatype mpi_type<std::uint64_t>()
{
    return MPI_UINT64_T;
}
template <> inline MPI_Datatype mpi_type<char>()
{
    return MPI_CHAR;
}

/// MPI counts are ints: larger buffers go in pieces of at most 2^30 elements.
inline constexpr std::size_t kMaxCount = std::size_t{1} << 30;

/// In-place allreduce of n elements at data (any n, 0 included).
template <class T> void allreduce_in_place(T* data, std::size_t n, MPI_Op op)
{
    for (std::size_t first = 0; first < n; first += kMaxCount) {
        const std::size_t count = n - first < kMaxCount ? n - first : kMaxCount;
        MPI_Allreduce(MPI_IN_PLACE, data + first, static_cast<int>(count), mpi_type<T>(), op, MPI_COMM_WORLD);
    }
}

/// Broadcast of n elements at data from root (any n, 0 included).
template <class T> void bcast(T* data, std::size_t n, int root)
{
    for (std::size_t first = 0; first < n; first += kMaxCount) {
        const std::size_t count = n - first < kMaxCount ? n - first : kMaxCount;
        MPI_Bcast(data + first, static_cast<int>(count), mpi_type<T>(), root, MPI_COMM_WORLD);
    }
}

/// Broadcasts a string from root; every rank returns root's string.
std::string bcast_string(const std::string& s, int root);

/// A collective check: every rank passes its own finding, `error` empty when it found
/// nothing wrong, with a `key` that orders the findings (the first difference wins; ties
/// go to the lowest rank). When any rank found something, every rank throws tg::Error with
/// the winning rank's message, so that all ranks fail at the same point instead of some
/// waiting for ever in the next collective.
void agree(const std::string& error, std::uint64_t key = 0);

/// Throws tg::Error unless a World is alive (`who` names the calling function).
void require_world(const char* who);

}  // namespace tg::dist::detail
