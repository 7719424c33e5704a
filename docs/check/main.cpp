// The documentation's check: every ```cpp block of the pages it is given is compiled into
// this program (as the build generated it from the pages), and every program block runs.
//
//   doc_blocks --list                         the compiled blocks, page by page
//   doc_blocks --check <source dir> <page>... reads each page again, requires that its blocks
//                                             are exactly the compiled ones (a page edited
//                                             after the build, or a block the generator
//                                             missed, fails), then runs the programs
//
// The pages are read here with a scanner of their own, independent of the generator's.

#include "doc_blocks.hpp"

#include <cstdio>
#include <exception>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace tg_doc {
namespace {

std::map<std::string, std::vector<Block>>& registry()
{
    static std::map<std::string, std::vector<Block>> pages;
    return pages;
}

struct Fence {
    int line;
    std::string kind;  // "declarations", "fragment", "skip", or the marker as written
};

std::string trim(const std::string& s)
{
    const std::size_t first = s.find_first_not_of(" \t\r");
    if (first == std::string::npos) return std::string();
    return s.substr(first, s.find_last_not_of(" \t\r") - first + 1);
}

// The ```cpp fences of a markdown file: a fence opens with three or more backticks at the
// start of a line (after indentation) and an info string without backticks, and closes
// with at least as many backticks, alone on a line.
bool scan(const std::string& path, std::vector<Fence>& fences)
{
    std::ifstream in(path);
    if (!in) return false;
    std::string line;
    std::size_t open = 0;
    for (int number = 1; std::getline(in, line); ++number) {
        const std::size_t start = line.find_first_not_of(" \t");
        if (start == std::string::npos || line.compare(start, 3, "```") != 0) continue;
        std::size_t ticks = line.find_first_not_of('`', start);
        if (ticks == std::string::npos) ticks = line.size();
        const std::size_t count = ticks - start;
        const std::string rest = trim(line.substr(ticks));
        if (open > 0) {
            if (rest.empty() && count >= open) open = 0;
            continue;
        }
        if (rest.find('`') != std::string::npos) continue;  // inline code, not a fence
        open = count;
        const std::size_t space = rest.find(' ');
        if (rest.substr(0, space) != "cpp") continue;
        const std::string marker = space == std::string::npos ? std::string() : trim(rest.substr(space));
        fences.push_back({number, marker.empty() ? std::string("declarations") : marker});
    }
    return true;
}

int list()
{
    for (const auto& [page, blocks] : registry()) {
        std::printf("%s: %zu blocks\n", page.c_str(), blocks.size());
        for (const Block& b : blocks) std::printf("  %s:%d  %s\n", page.c_str(), b.line, b.kind);
    }
    return 0;
}

int check(const std::string& root, const std::vector<std::string>& pages)
{
    int errors = 0;
    std::map<std::string, int> counts;
    for (const std::string& page : pages) {
        std::vector<Fence> fences;
        if (!scan(root + "/" + page, fences)) {
            std::printf("%s: cannot read %s/%s\n", page.c_str(), root.c_str(), page.c_str());
            ++errors;
            continue;
        }
        const auto found = registry().find(page);
        if (found == registry().end()) {
            std::printf("%s: %zu ```cpp blocks on the page, but the page is not compiled into this program\n",
                        page.c_str(), fences.size());
            ++errors;
            continue;
        }
        const std::vector<Block>& blocks = found->second;
        bool same = fences.size() == blocks.size();
        for (std::size_t i = 0; same && i < fences.size(); ++i) {
            const std::string compiled = blocks[i].kind == std::string("program") ? "declarations" : blocks[i].kind;
            same = fences[i].line == blocks[i].line && fences[i].kind == compiled;
        }
        if (!same) {
            std::printf("%s: the page's ```cpp blocks are not the ones compiled (rebuild?)\n  on the page:",
                        page.c_str());
            for (const Fence& f : fences) std::printf(" %d (%s)", f.line, f.kind.c_str());
            std::printf("\n  compiled:   ");
            for (const Block& b : blocks) std::printf(" %d (%s)", b.line, b.kind);
            std::printf("\n");
            ++errors;
            continue;
        }
        std::printf("%s: %zu blocks compiled\n", page.c_str(), blocks.size());
        for (const Block& b : blocks) ++counts[b.kind];
    }
    for (const auto& [page, blocks] : registry()) {
        bool listed = false;
        for (const std::string& p : pages) listed = listed || p == page;
        if (!listed) {
            std::printf("%s: compiled in, but not among the pages to check\n", page.c_str());
            ++errors;
        }
    }
    if (errors > 0) {
        std::printf("docs check: %d error(s)\n", errors);
        return 1;
    }
    for (const auto& [page, blocks] : registry()) {
        for (const Block& b : blocks) {
            if (!b.main) continue;
            std::printf("%s:%d: running its program\n", page.c_str(), b.line);
            std::fflush(stdout);
            char name[] = "doc_program";
            char* argv[] = {name, nullptr};
            int status = 0;
            try {
                status = b.main(1, argv);
            } catch (const std::exception& e) {
                std::printf("%s:%d: the program threw: %s\n", page.c_str(), b.line, e.what());
                status = 1;
            }
            if (status != 0) {
                std::printf("%s:%d: the program returned %d\n", page.c_str(), b.line, status);
                ++errors;
            }
        }
    }
    std::fflush(stdout);
    std::printf("docs check: %zu pages; %d declaration blocks, %d fragments, %d programs run, %d skipped: %s\n",
                pages.size(), counts["declarations"], counts["fragment"], counts["program"], counts["skip"],
                errors == 0 ? "ok" : "FAILED");
    return errors == 0 ? 0 : 1;
}

}  // namespace

Page::Page(const char* path, std::initializer_list<Block> blocks)
{
    registry()[path] = std::vector<Block>(blocks);
}

}  // namespace tg_doc

int main(int argc, char** argv)
{
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "--list") return tg_doc::list();
    if (mode == "--check" && argc > 2) return tg_doc::check(argv[2], std::vector<std::string>(argv + 3, argv + argc));
    std::fprintf(stderr, "usage: %s --list | --check <source dir> <page>...\n", argv[0]);
    return 2;
}
