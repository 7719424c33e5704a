#pragma once
/// \file data.hpp
/// Data loading (in progress).
