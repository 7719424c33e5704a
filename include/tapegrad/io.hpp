#pragma once
/// \file io.hpp
/// Safetensors checkpoints (in progress).
