suppressMessages(library(metafor))
a <- commandArgs(trailingOnly = TRUE)
outdir <- a[1]
ctl <- list(threshold = 1e-12, maxiter = 1000, tol = 1e-12)
yus <- escalc(measure = "OR", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = dat.yusuf1985)
sets <- list(
  bcg = list(d = escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg), mods = c("ablat", "year")),
  normand = list(d = escalc(measure = "MD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i,
                            data = dat.normand1999), mods = character(0)),
  hackshaw = list(d = dat.hackshaw1998, mods = c("year")),
  molloy = list(d = escalc(measure = "ZCOR", ri = ri, ni = ni, data = dat.molloy2014), mods = c("meanage", "quality")),
  pritz = list(d = escalc(measure = "PR", xi = xi, ni = ni, data = dat.pritz1997), mods = character(0)),
  raudenbush = list(d = dat.raudenbush1985, mods = c("weeks")),
  mcdaniel = list(d = escalc(measure = "ZCOR", ri = ri, ni = ni, data = dat.mcdaniel1994), mods = character(0)),
  yusuf6 = list(d = yus[yus$table == "6", ], mods = character(0)),
  yusuf12b = list(d = yus[yus$table == "12b", ], mods = character(0))
)
res <- file(file.path(outdir, "ref.csv"), "w")
put <- function(case, key, v) writeLines(sprintf("%s,%s,%d,%.17g", case, key, seq_along(v), as.numeric(v)), res)
for (nm in names(sets)) {
  s <- sets[[nm]]
  d <- as.data.frame(s$d)[, c("yi", "vi", s$mods), drop = FALSE]
  d <- d[complete.cases(d), , drop = FALSE]
  write.csv(d, file.path(outdir, paste0(nm, ".csv")), row.names = FALSE)
  for (withmods in unique(c(FALSE, length(s$mods) > 0))) {
    for (method in c("DL", "PM", "EB", "ML", "REML", "HE", "SJ", "HS")) {
      for (test in if (method %in% c("REML", "DL", "PM")) c("z", "knha") else "z") {
        case <- paste(nm, if (withmods) "mods" else "none", method, test, sep = ":")
        f <- if (withmods) as.formula(paste("~", paste(s$mods, collapse = " + "))) else ~1
        m <- rma(yi, vi, mods = f, data = d, method = method, test = test, control = ctl)
        put(case, "tau2", m$tau2); put(case, "se_tau2", m$se.tau2)
        put(case, "beta", m$beta); put(case, "se", m$se); put(case, "zval", m$zval); put(case, "pval", m$pval)
        put(case, "ci_lb", m$ci.lb); put(case, "ci_ub", m$ci.ub)
        put(case, "QE", m$QE); put(case, "QEp", m$QEp); put(case, "QM", m$QM); put(case, "QMp", m$QMp)
        put(case, "I2", m$I2); put(case, "H2", m$H2)
        if (withmods) put(case, "R2", m$R2)
        put(case, "fit_ML", unlist(m$fit.stats$ML)); put(case, "fit_REML", unlist(m$fit.stats$REML))
        b <- blup(m)
        put(case, "blup", b$pred); put(case, "blup_se", b$se); put(case, "pi_lb", b$pi.lb); put(case, "pi_ub", b$pi.ub)
        if (method == "REML" && test == "z") {
          ci <- confint(m, control = list(tol = 1e-13))$random
          put(case, "ci_tau2", ci[1, ]); put(case, "ci_I2", ci[3, ]); put(case, "ci_H2", ci[4, ])
          writeLines(capture.output(print(summary(m))), file.path(outdir, paste0(gsub(":", "_", case), ".txt")))
        }
      }
    }
  }
}
close(res)
