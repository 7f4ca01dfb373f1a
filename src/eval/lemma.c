/* src/eval/lemma.c: a rule-based English singulariser, the lemmatiser of the CHAIR evaluation.
 *
 * CHAIR's reference script lemmatises nouns with a dictionary-backed lemmatiser (pattern.en's
 * singularize, later NLTK's WordNet). We keep no dictionary: a table of irregular plurals, a list
 * of words that end in s but are singular (or the same in both numbers), then suffix rules. The
 * rules run on every token, not only on nouns (no part-of-speech tagger); only the results that
 * meet a vocabulary phrase matter, so a verb such as "walks" -> "walk" is harmless. Known verb
 * forms that would become object nouns ("flies", "watches") are kept as they are. Order:
 *   1. irregular table                     people -> person, wolves -> wolf, mice -> mouse
 *   2. compounds on -men / -women          firemen -> fireman (not omen, abdomen, ramen, ...)
 *   3. unchanged list; words of <= 3 bytes; endings -ss -us -is    species, bus, glass, tennis
 *   4. -ies -> -y (len > 4), except -ie nouns (movies -> movie)     puppies -> puppy
 *   5. -ves -> -ve (the -f/-fe ones are in the table)               doves -> dove
 *   6. -es: after ss, x, zz, ch, sh, -uses: drop "es"; -oes: drop "es" for the -o nouns of a
 *      list (potato), else drop "s" (shoes); -aches from ache drop "s"    boxes -> box
 *   7. -s -> drop it                                               dogs -> dog
 * docs/eval.md lists the tables.
 */
#include <string.h>

#include "eval_internal.h"

typedef struct {
    const char *plural, *singular;
} pair;

static const pair irregular[] = {
    {"people", "person"},   {"persons", "person"},     {"men", "man"},         {"women", "woman"},
    {"children", "child"},  {"kids", "kid"},           {"mice", "mouse"},      {"geese", "goose"},
    {"feet", "foot"},       {"teeth", "tooth"},        {"oxen", "ox"},         {"lice", "louse"},
    {"wolves", "wolf"},     {"knives", "knife"},       {"leaves", "leaf"},     {"wives", "wife"},
    {"lives", "life"},      {"halves", "half"},        {"calves", "calf"},     {"loaves", "loaf"},
    {"shelves", "shelf"},   {"thieves", "thief"},      {"scarves", "scarf"},   {"hooves", "hoof"},
    {"elves", "elf"},       {"selves", "self"},        {"dwarves", "dwarf"},   {"wharves", "wharf"},
    {"quizzes", "quiz"},    {"gases", "gas"},          {"canvases", "canvas"}, {"atlases", "atlas"},
    {"cacti", "cactus"},    {"fungi", "fungus"},       {"octopi", "octopus"},  {"indices", "index"},
    {"matrices", "matrix"}, {"vertices", "vertex"},    {"criteria", "criterion"},
    {"phenomena", "phenomenon"}, {"bacteria", "bacterium"}, {"larvae", "larva"},
    {"antennae", "antenna"}, {"passersby", "passerby"}, {"dice", "die"},  {"policemen", "policeman"},
    {"buses", "bus"},       {"busses", "bus"},         {"lenses", "lens"},     {"axes", "axe"},
    {"houses", "house"},    {"blouses", "blouse"},     {"causes", "cause"},    {"horses", "horse"},
    {"mongooses", "mongoose"}, {"noses", "nose"},      {"roses", "rose"},      {"vases", "vase"},
    {"cases", "case"},      {"bases", "base"},         {"nurses", "nurse"},    {"purses", "purse"},
    {"courses", "course"},  {"hoses", "hose"},
};

/* Words that end in s but are singular, or have one form for both numbers. */
static const char *const unchanged[] = {
    "species", "series",  "news",    "lens",     "chaos",    "means",    "physics", "mathematics",
    "pants",   "jeans",   "trousers", "scissors", "clothes", "shorts",   "pajamas", "pyjamas",
    "cosmos", "rhinoceros", "asbestos", "measles", "diabetes", "herpes", "billiards",
    "aircraft", "headphones", "earphones", "binoculars", "tweezers", "pliers",  "overalls",
    "goggles", "bellows", "gallows", "mumps",   "rabies",   "molasses", "alias",   "canvas",
    "atlas",   "christmas", "texas",  "always",  "perhaps",  "towards",  "afterwards", "besides",
    "sometimes", "whereas", "thanks", "yes",     "this",     "his",      "hers",    "ours",
    "yours",   "theirs",  "its",     "was",      "has",      "does",     "goes",    "less",
    "flies",   "watches", "gymnastics", "athletics", "aerobics",
};

/* -ie nouns: their -ies plural loses only the s. */
static const char *const ie_nouns[] = {
    "movie", "cookie", "zombie", "collie", "budgie", "hoodie", "selfie", "smoothie", "brownie",
    "rookie", "goalie", "genie", "prairie", "calorie", "birdie", "boogie", "sweetie", "auntie",
    "pixie", "bootie", "beastie", "aussie", "veggie", "walkie", "talkie", "eyrie", "magpie",
    "kiddie", "doggie", "bunnie",
};

/* -o nouns whose plural is -oes. */
static const char *const oes_nouns[] = {
    "potato", "tomato", "hero", "echo", "volcano", "mosquito", "torpedo", "buffalo", "domino",
    "tornado", "cargo", "veto", "mango", "flamingo", "embargo", "motto",
};

/* Compounds ending in men that are not plurals of -man. */
static const char *const men_words[] = {"omen", "abdomen", "stamen", "semen", "specimen", "regimen",
                                        "amen", "yemen", "acumen", "hymen", "ramen", "lumen", "examen"};

static bool in_list(const char *w, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(w, list[i])) return true;
    return false;
}

static bool ends(const char *w, size_t n, const char *suf)
{
    size_t k = strlen(suf);
    return n >= k && !memcmp(w + n - k, suf, k);
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Writes stem (first keep bytes of w) + add into out. */
static size_t emit(const char *w, size_t keep, const char *add, char *out, size_t cap)
{
    size_t na = strlen(add);
    if (keep + na + 1 > cap) {
        if (cap) out[0] = '\0';
        return (size_t)-1;
    }
    memmove(out, w, keep);
    memcpy(out + keep, add, na + 1);
    return keep + na;
}

size_t avl_eval_singular(const char *w, char *out, size_t cap)
{
    if (!w || !out) return (size_t)-1;
    size_t n = strlen(w);
    for (size_t i = 0; i < COUNT(irregular); i++)
        if (!strcmp(w, irregular[i].plural)) return emit(irregular[i].singular, strlen(irregular[i].singular), "", out, cap);
    /* firemen, policewomen, ... (the table has men and women themselves) */
    if (n > 3 && ends(w, n, "men") && !in_list(w, men_words, COUNT(men_words))) return emit(w, n - 3, "man", out, cap);
    if (n <= 3 || in_list(w, unchanged, COUNT(unchanged)) || ends(w, n, "ss") || ends(w, n, "us") ||
        ends(w, n, "is") || w[n - 1] != 's')
        goto same;
    if (ends(w, n, "ies")) {
        if (n <= 4) return emit(w, n - 1, "", out, cap); /* pies, ties */
        char stem[64];
        if (n - 1 < sizeof stem) {
            memcpy(stem, w, n - 1);
            stem[n - 1] = '\0';
            if (in_list(stem, ie_nouns, COUNT(ie_nouns))) return emit(w, n - 1, "", out, cap);
        }
        return emit(w, n - 3, "y", out, cap);
    }
    if (ends(w, n, "ves")) return emit(w, n - 1, "", out, cap);
    if (ends(w, n, "es")) {
        if (ends(w, n, "sses") || ends(w, n, "xes") || ends(w, n, "zzes") || ends(w, n, "shes") ||
            ends(w, n, "uses"))
            return emit(w, n - 2, "", out, cap);
        if (ends(w, n, "ches")) {
            if (ends(w, n, "aches") && (ends(w, n, "headaches") || ends(w, n, "stomaches") ||
                                        ends(w, n, "moustaches") || ends(w, n, "mustaches") ||
                                        ends(w, n, "caches")))
                return emit(w, n - 1, "", out, cap);
            return emit(w, n - 2, "", out, cap);
        }
        if (ends(w, n, "oes")) {
            char stem[64];
            if (n - 2 < sizeof stem) {
                memcpy(stem, w, n - 2);
                stem[n - 2] = '\0';
                if (in_list(stem, oes_nouns, COUNT(oes_nouns))) return emit(w, n - 2, "", out, cap);
            }
        }
        return emit(w, n - 1, "", out, cap);
    }
    return emit(w, n - 1, "", out, cap);
same:
    return emit(w, n, "", out, cap);
}
