#pragma once
// A scope for tools that record on the caller's tape (the functional transforms,
// gradcheck): what they record and drop is reclaimed as their handles go away; on exit the
// scope collects anything left unreachable, so the caller's pass keeps only its own entries.

#include "tapegrad/tape.hpp"

namespace tg::detail {

template <class T> class TapeScope {
public:
    TapeScope() : tape_(Tape<T>::current()) {}
    ~TapeScope()
    {
        if (!tape_.flags.sweeping) tape_.collect();
    }
    TapeScope(const TapeScope&) = delete;
    TapeScope& operator=(const TapeScope&) = delete;

private:
    Tape<T>& tape_;
};

}  // namespace tg::detail
