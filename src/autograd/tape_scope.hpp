#pragma once
// A scope that leaves the calling thread's tape as it found it, for tools that record on
// the caller's tape (the functional transforms, gradcheck).

#include <cstddef>
#include <cstdint>

#include "tapegrad/tape.hpp"

namespace tg::detail {

/// On exit drops the entries recorded since construction; if the caller's pass ended in
/// between (a backward freed it), the new pass ends empty.
template <class T> class TapeScope {
public:
    TapeScope() : tape_(Tape<T>::current()), pass_(tape_.pass), size_(tape_.size()) {}
    ~TapeScope() { tape_.truncate(tape_.pass == pass_ ? size_ : 0); }
    TapeScope(const TapeScope&) = delete;
    TapeScope& operator=(const TapeScope&) = delete;

private:
    Tape<T>& tape_;
    std::uint64_t pass_;
    std::size_t size_;
};

}  // namespace tg::detail
