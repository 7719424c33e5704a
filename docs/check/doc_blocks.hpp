#pragma once
// What the translation units generated from the documentation's pages (cmake/doc_blocks.cmake)
// register: one Page per markdown file, one Block per ```cpp block, in the page's order.
// docs/check/main.cpp holds the registry and the check that runs it.

#include <functional>
#include <initializer_list>
#include <string>
#include <type_traits>
#include <vector>

namespace tg_doc {

/// A block's main, whatever its signature (`()` or `(int, char**)`) and return type
/// (int, or void for a main that returns nothing).
using Main = std::function<int(int, char**)>;

struct Block {
    int line;          ///< the line of its opening fence
    const char* kind;  ///< "declarations", "fragment", "program" or "skip"
    Main main;         ///< set for programs
};

struct Page {
    Page(const char* path, std::initializer_list<Block> blocks);
};

template <class F> Main program(F* main)
{
    return [main](int argc, char** argv) {
        if constexpr (std::is_invocable_v<F*, int, char**>) {
            if constexpr (std::is_void_v<std::invoke_result_t<F*, int, char**>>) {
                main(argc, argv);
                return 0;
            } else {
                return static_cast<int>(main(argc, argv));
            }
        } else {
            (void)argc;
            (void)argv;
            if constexpr (std::is_void_v<std::invoke_result_t<F*>>) {
                main();
                return 0;
            } else {
                return static_cast<int>(main());
            }
        }
    };
}

}  // namespace tg_doc
