// Chinese in the search box: the query side of the rule in tools/book/src/search.rs, which puts
// this script in front of the search index. Every maximal run of CJK characters gives its
// overlapping two-character pieces and its last character alone; the pieces skip the English
// pipeline (its trimmer would erase them). mdBook's words stay as they were.
(function (elasticlunr) {
    'use strict';
    if (!elasticlunr || elasticlunr.tokenizer.cjk) {
        return;
    }
    const run = /[@CJK@]+/g;
    const onlyCjk = /^[@CJK@]+$/;

    function pieces(text) {
        const found = [];
        for (const chars of String(text).match(run) || []) {
            for (let i = 0; i + 1 < chars.length; i++) {
                found.push(chars.slice(i, i + 2));
            }
            found.push(chars[chars.length - 1]);
        }
        return found;
    }

    const english = elasticlunr.tokenizer;
    // A word of CJK characters alone is never in the index (the trimmer erased it there): its
    // pieces stand for it.
    const tokenizer = text => english(text).filter(word => !onlyCjk.test(word)).concat(pieces(text));
    elasticlunr.tokenizer = Object.assign(tokenizer, english, {cjk: true});

    const steps = elasticlunr.Pipeline.registeredFunctions;
    for (const name of ['trimmer', 'stopWordFilter', 'stemmer']) {
        const step = steps[name];
        const kept = token => onlyCjk.test(token) ? token : step(token);
        kept.label = name;
        steps[name] = kept;
    }
})(window.elasticlunr);
