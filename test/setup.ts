// React's act() needs this flag, or it warns and key presses race (docs/reference/ecosystem.md P2).
(globalThis as {IS_REACT_ACT_ENVIRONMENT?: boolean}).IS_REACT_ACT_ENVIRONMENT = true;
process.env.FORCE_COLOR = '0';
