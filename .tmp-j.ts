import { benchJudgment, judgmentReadmeTables, judgmentTableRows } from './bench/judgment';
benchJudgment({ releases: 20 }).then((r) => { console.log(r.seconds, 's'); console.log(judgmentTableRows(r).slice(0, 3).join('\n')); console.log(judgmentReadmeTables(r).join('\n')); });
