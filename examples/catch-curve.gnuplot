# catch-curve.gnuplot - the catch curve of a sendwrap report as a PNG:
# the share of early talkers (and of hang-ups) caught by each time into
# the greeting delay, the figure to choose a delay by.
#
#   sendwrap --report --report-format csv /var/log/mail.log* > report.csv
#   gnuplot -c catch-curve.gnuplot report.csv catch-curve.png
#
# Reads the "catch" rows of the CSV (table,period,name,detail,value,
# percent: detail the seconds, percent the share caught by then).
if (ARGC < 2) {
    print "usage: gnuplot -c catch-curve.gnuplot REPORT.csv OUT.png"
    exit status 2
}
set terminal pngcairo size 800,500 noenhanced
set output ARG2
set datafile separator ","
set title "Caught by each time into the wait (sendwrap --report)"
set xlabel "seconds into the wait"
set ylabel "share caught (%)"
set yrange [0:100]
set logscale x
set grid
set key bottom right
is(kind) = strcol(1) eq "catch" && strcol(3) eq kind
plot ARG1 using (is("early") ? $4 : NaN):6 with linespoints lw 2 \
        title "early talkers", \
     ARG1 using (is("hangup") ? $4 : NaN):6 with linespoints lw 2 \
        title "hang-ups"
