// Search ranking for the site (conf.py: html_search_scorer). Sphinx's defaults, plus one rule: an API entry whose
// own name is a word of the query, as typed (fnnet.fit, Model), comes before a module that merely shares the
// word (fnnet.training.fit, fnnet.lessons.models), so "fit" lands on fnnet.fit itself.
var Scorer = {
  score: (result) => {
    const [docname, title, anchor, descr, score, filename, kind] = result;
    if (kind !== "object" || anchor.startsWith("#module-")) return score;
    const query = new URLSearchParams(window.location.search).get("q") || "";
    const words = query.split(/[^\p{Letter}\p{Number}_]+/u).filter((word) => word);
    return words.includes(title.split(".").pop()) ? score + 20 : score;
  },
  objNameMatch: 11,
  objPartialMatch: 6,
  objPrio: {0: 15, 1: 5, 2: -5},
  objPrioDefault: 0,
  title: 15,
  partialTitle: 7,
  term: 5,
  partialTerm: 2,
};
