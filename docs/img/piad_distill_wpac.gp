set terminal pngcairo size 1000,650 noenhanced font ",11"
set output "docs/img/piad_distill_wpac.png"
set title "PIAD with in-place distillation, WPAC start, demo recipe (3 epochs, 20k images)"
set xlabel "MACs (paper convention, millions)"
set ylabel "top-1 on 10000 Fashion-MNIST test images (%)"
set key bottom right
set grid
plot "docs/img/piad_distill_wpac.dat" index 0 using 1:2 with linespoints lw 2 dt 1 pt 5 title "none (the paper)", "docs/img/piad_distill_wpac.dat" index 1 using 1:2 with linespoints lw 2 dt 1 pt 7 title "frozen", "docs/img/piad_distill_wpac.dat" index 2 using 1:2 with linespoints lw 2 dt 1 pt 9 title "full", "docs/img/piad_distill_wpac.dat" index 3 using 1:2 with linespoints lw 2 dt 1 pt 11 title "progressive", "docs/img/piad_distill_wpac.dat" index 4 using 1:2 with linespoints lw 2 dt 1 pt 13 title "none + sandwich", "docs/img/piad_distill_wpac.dat" index 5 using 1:2 with linespoints lw 2 dt 1 pt 15 title "progressive + sandwich (chain)"
