// tg::data: IDX reading, datasets and loaders (in progress).
#include "tapegrad/data.hpp"
