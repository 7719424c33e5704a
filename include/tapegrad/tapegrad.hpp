#pragma once
/// \file tapegrad.hpp
/// Everything: Var and the tape, the ops, tensor factories and printing, gradcheck, the kit
/// for writing new ops, modules and layers, optimisers, data loading and checkpoints.

#include "tapegrad/attention.hpp"
#include "tapegrad/autograd.hpp"
#include "tapegrad/checkpoint.hpp"
#include "tapegrad/data.hpp"
#include "tapegrad/error.hpp"
#include "tapegrad/gradcheck.hpp"
#include "tapegrad/hooks.hpp"
#include "tapegrad/image.hpp"
#include "tapegrad/io.hpp"
#include "tapegrad/kit.hpp"
#include "tapegrad/nn.hpp"
#include "tapegrad/op.hpp"
#include "tapegrad/ops.hpp"
#include "tapegrad/optim.hpp"
#include "tapegrad/random.hpp"
#include "tapegrad/recurrent.hpp"
#include "tapegrad/runtime.hpp"
#include "tapegrad/tape.hpp"
#include "tapegrad/tensor.hpp"
#include "tapegrad/var.hpp"
