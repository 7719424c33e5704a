// tg::io: safetensors reading and writing (in progress).
#include "tapegrad/io.hpp"
